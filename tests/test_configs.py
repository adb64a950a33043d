"""Every config file loads, documents its command, and trains through the real loop."""

import glob
import importlib
import os

import numpy as np
import pytest

from resnet_flax import train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, 'configs', '*.py'))
                 if not p.endswith('__init__.py'))
# (image size, channels, classes) of each dataset a config names, for a synthetic stand-in.
NATIVE = {'cifar10': (32, 3, 10), 'cifar100': (32, 3, 100), 'fashion_mnist': (28, 1, 10),
          'digits': (32, 1, 10)}


def load(name):
  return importlib.import_module(f'configs.{name}')


@pytest.mark.parametrize('name', CONFIGS)
def test_docstring_gives_the_command_and_expectation(name):
  doc = load(name).__doc__
  if name == 'default':
    assert 'python train.py --config configs/default.py' in doc
  else:
    assert f'--config configs/{name}.py' in doc
  assert 'Expected' in doc or 'Target' in doc


SLOW_CONFIGS = ('resnet18_cifar100', 'resnet34_cifar100')  # the same recipe as fmnist's, bigger


@pytest.mark.parametrize('name', [
    pytest.param(n, marks=pytest.mark.slow) if n in SLOW_CONFIGS else n
    for n in CONFIGS if n not in ('default', 'digits')])
@pytest.mark.slow
def test_config_trains_on_synthetic_data_of_its_shape(name, tmp_path):
  """The recipe (model, optimizer, schedule, resize, augmentation) runs end to end, shrunk."""
  config = load(name).get_config()
  size, channels, classes = NATIVE[config.data.dataset]
  config.data.dataset = 'synthetic'
  config.data.synthetic.update(image_size=size, channels=channels, num_classes=classes,
                               num_train=16, num_test=8)
  config.update(batch_size=8, eval_batch_size=8, num_epochs=1, progress_bar=False)
  result = train_and_evaluate(config, str(tmp_path))
  assert result['step'] == 2 and np.isfinite(result['test_loss'])


@pytest.mark.parametrize('name', ['resnet18_cifar100', 'resnet34_cifar100'])
def test_the_keras_lesson_sees_pixels_scaled_to_minus_one_one(name):
  """The lesson's preprocess: 2 * x / 255 - 1 (its config's data.mean/std of 0.5)."""
  from resnet_flax.data import preprocess, sources
  config = load(name).get_config()
  config.data.dataset = 'synthetic'
  config.data.synthetic.update(image_size=32, channels=3, num_classes=100, num_train=8,
                               num_test=8)
  prep = preprocess.Preprocess.from_dataset(sources.load_dataset(config))
  pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, -1)
  np.testing.assert_allclose(prep(pixels), 2 * pixels.astype(np.float32) / 255 - 1, atol=1e-6)
