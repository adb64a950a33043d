"""Augmentation and preprocessing settings: checked when the data loads, evaluation batches and
per-pixel normalisation, and a training run with every switch on (pixel-level behaviour of each
augmentation: test_batches.py)."""

import jax
import numpy as np
import pytest

from resnet_flax import data as data_lib
from resnet_flax import train_and_evaluate
from resnet_flax.data.dataset import Dataset, Split, check_image_shape
from resnet_flax.errors import UserError


def toy(n=64, size=12, channels=3, classes=5, **fields):
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8)
  labels = rng.integers(0, classes, n).astype(np.int32)
  return Dataset('toy', Split(images, labels), Split(images[:37], labels[:37]), classes,
                 (0.5,) * channels, (0.25,) * channels, tuple(map(str, range(classes))), **fields)


@pytest.fixture(scope='module')
def ds():
  return toy()


@pytest.mark.parametrize('image_size', [0, 24])
def test_per_pixel_mean_centres_every_pixel(make_config, image_size):
  ds = data_lib.load_dataset(make_config(**{'data.normalization': 'per_pixel_mean'}))
  assert ds.pixel_mean.shape == (16, 16, 3) and ds.pixel_mean.dtype == np.float32
  prep = jax.jit(data_lib.Preprocess.from_dataset(ds, image_size).__call__)
  images = np.concatenate([prep(b['image']) for b in data_lib.eval_batches(ds.train, 96)])
  assert images.shape[1:3] == ((image_size or 16),) * 2
  np.testing.assert_allclose(images.mean(0), 0.0, atol=1e-4)
  assert images.std() > 0.5


@pytest.mark.parametrize('batch_size', [1, 2, 6, 36, 38, 100])
def test_eval_slices_of_two_processes_count_every_image_once(ds, batch_size):
  one = list(data_lib.eval_batches(ds.test, batch_size))
  assert all(b['image'].shape[0] == batch_size and b['image'].dtype == np.uint8 for b in one)
  if batch_size % 2 == 0:
    halves = [list(data_lib.eval_batches(ds.test, batch_size, process_index=i, process_count=2))
              for i in (0, 1)]
    for whole, first, second in zip(one, *halves):
      for key in whole:
        np.testing.assert_array_equal(whole[key], np.concatenate([first[key], second[key]]))
  mask = np.concatenate([b['mask'] for b in one])
  assert mask.sum() == 37 and len(one) == -(-37 // batch_size)
  real = np.concatenate([b['image'] for b in one])[mask == 1]
  np.testing.assert_array_equal(real, ds.test.images)
  np.testing.assert_array_equal(np.concatenate([b['label'] for b in one])[mask == 1], ds.test.labels)


def test_train_order_is_a_function_of_seed_and_epoch(ds):
  def first_labels(seed, epoch):
    batch = next(data_lib.train_batches(ds, batch_size=16, seed=seed, epoch=epoch))
    return np.concatenate([batch['label'], batch['image'].reshape(16, -1)[:, 0]])
  np.testing.assert_array_equal(first_labels(0, 0), first_labels(0, 0))
  assert not np.array_equal(first_labels(0, 0), first_labels(1, 0))
  assert not np.array_equal(first_labels(0, 0), first_labels(0, 1))


@pytest.mark.parametrize('overrides,message', [
    ({'augment.crop_mode': 'edge'}, "crop_mode='edge': use one of 'zero', 'reflect'"),
    ({'augment.crop_mode': 'reflect', 'augment.crop_padding': 16}, 'smaller than the 16x16'),
    ({'augment.cutout': 17}, 'cutout=17 exceeds the 16x16'),
    ({'augment.mixup_alpha': -0.2}, 'mixup_alpha=-0.2 must be 0'),
    ({'augment.mix_switch_prob': 1.5}, 'from 0 to 1'),
    ({'augment.policy': 'autoaugment'}, "policy='autoaugment': use one of 'none', "),
    ({'augment.randaugment_m': 31}, 'randaugment_m=31: n must be at least 1 and m from 0 to 30'),
    ({'data.normalization': 'per_image'}, "use one of 'per_channel', 'per_pixel_mean'"),
    ({'data.image_size': -8}, 'image_size=-8 must be a positive size'),
    ({'data.cifar100_labels': 'coarse'}, 'CIFAR-100 only, not synthetic'),
    ({'data.train_split': 'train[:50%]'}, 'synthetic has fixed train and test splits'),
])
def test_bad_settings_fail_when_the_data_is_loaded(make_config, overrides, message):
  with pytest.raises(UserError, match=message.replace('[', r'\[').replace('(', r'\(')):
    data_lib.load_dataset(make_config(**overrides))


def test_check_image_shape_names_the_fix():
  check_image_shape((32, 32, 3), min_size=32, channels=3)
  with pytest.raises(UserError, match='image_size=32'):
    check_image_shape((28, 28, 1), min_size=32)
  with pytest.raises(UserError, match='grayscale_to_rgb=True'):
    check_image_shape((28, 28, 1), channels=3)
  with pytest.raises(UserError, match='empty dimension'):
    check_image_shape((0, 0, 3))


@pytest.mark.slow  # compiles a ResNet-20 step
def test_training_runs_with_soft_targets_and_every_switch(make_config, tmp_path):
  """The train step takes the mixed batches ('target' included) end to end."""
  config = make_config(**{
      'augment.crop_mode': 'reflect', 'augment.cutout': 4, 'augment.cutout_per_batch': True,
      'augment.mixup_alpha': 0.2, 'augment.cutmix_alpha': 1.0, 'data.validation_size': 16,
      'data.normalization': 'per_pixel_mean', 'data.image_size': 20, 'num_epochs': 1})
  result = train_and_evaluate(config, str(tmp_path))
  assert result['step'] == 2 and np.isfinite(result['test_loss'])
