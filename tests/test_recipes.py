"""Every config under configs/ loads as train.py loads it, builds its model with the published
parameter count and gives the learning rates its docstring documents; two recipes train a step."""

import glob
import importlib
import os

from absl import flags
from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections import config_flags

from resnet_flax.training import build, durations, optim

from resnet_flax import train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_FILES = sorted(
    os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, 'configs', '**', '*.py'),
                                                 recursive=True)
    if not p.endswith('__init__.py'))
RECIPES = [p for p in CONFIG_FILES if p.startswith(os.path.join('configs', 'recipes', ''))]

# (training images, classes, input shape) of each dataset the configs name.
DATASETS = {'cifar10': (50_000, 10, (32, 32, 3)), 'cifar100': (50_000, 100, (32, 32, 3)),
            'fashion_mnist': (60_000, 10, (28, 28, 1)), 'digits': (1_437, 10, (32, 32, 1))}

# docs/reference.md: learnable parameters (BN scale/bias included), exact.
PUBLISHED_PARAMS = {
    ('resnet20', 10): 269_722, ('resnet32', 10): 464_154, ('resnet44', 10): 658_586,
    ('resnet56', 10): 853_018, ('resnet110', 10): 1_727_962, ('resnet1202', 10): 19_421_274,
    ('resnet18', 10): 11_173_962, ('resnet18', 100): 11_220_132,
    ('preact_resnet18', 10): 11_171_146, ('wrn28_10', 10): 36_479_194,
    ('wrn28_10', 100): 36_536_884,
}
# Not in docs/reference.md: He et al. 2016b's rounded counts of conv and dense weights, in millions.
PAPER_WEIGHTS_M = {'preact_resnet164': 1.7, 'preact_resnet1001': 10.2}


def name_of(path):
  return os.path.basename(path)[:-3]


def load(path):
  """The config exactly as `train.py --config path` parses it (absl config_flags)."""
  argv = ['train.py', '--config', os.path.join(ROOT, path)]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', None, '', flag_values=values, lock_config=True,
                                  sys_argv=argv)
  values(argv)
  return values.config


def shape_of(config):
  """(training images, classes, input shape) the config's dataset gives."""
  train, classes, shape = DATASETS[config.data.dataset]
  if config.data.image_size:
    shape = (config.data.image_size, config.data.image_size, shape[2])
  return train - config.data.validation_size, classes, shape


@pytest.mark.parametrize('path', RECIPES, ids=name_of)
def test_recipe_docstring_gives_command_source_and_target(path):
  doc = importlib.import_module(f'configs.recipes.{name_of(path)}').__doc__
  assert f'python train.py --config {path} --workdir runs/{name_of(path)}' in doc
  words = ' '.join(doc.split()).lower()  # phrases may wrap
  assert 'source:' in words and 'target:' in words and 'status:' in words


# Tracing a 1,000-layer init is slow; test_models checks those nets' counts in the fast suite.
DEEP = ('preact_resnet1001', 'resnet1202')


@pytest.mark.parametrize('path', [
    pytest.param(p, marks=pytest.mark.slow) if any(d in p for d in DEEP) else p
    for p in CONFIG_FILES], ids=name_of)
def test_model_builds_with_the_published_parameter_count(path):
  config = load(path)
  _, classes, shape = shape_of(config)
  model = build.create_model(config.model, classes)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, *shape)),
                                                train=False))
  params = variables['params']
  count = sum(x.size for x in jax.tree.leaves(params))
  published = shape == (32, 32, 3)  # the published counts are for CIFAR's 32x32 RGB inputs
  if published and (config.model.name, classes) in PUBLISHED_PARAMS:
    assert count == PUBLISHED_PARAMS[config.model.name, classes]
  elif published and config.model.name in PAPER_WEIGHTS_M:
    weights = sum(x.size for k, x in traverse_util.flatten_dict(params).items()
                  if k[-1] == 'kernel')
    assert round(weights / 1e6, 1) == PAPER_WEIGHTS_M[config.model.name]
  else:  # only the tutorial nets and the offline digits config come without a published count
    assert path not in RECIPES, f'{path}: add its published parameter count here'


# The learning rate each config's docstring documents, at (step, lr) points: the milestones and
# their step before. 390 steps per epoch is 50,000 // 128.
HE = [(0, 0.1), (31_999, 0.1), (32_000, 0.01), (47_999, 0.01), (48_000, 0.001), (63_959, 0.001)]
HE_WARM = [(0, 0.01), (399, 0.01), (400, 0.1), *HE[1:]]
AKA = [(0, 0.1), (38_999, 0.1), (39_000, 0.01), (58_499, 0.01), (58_500, 0.001), (77_999, 0.001)]
AKA_WARM = [(0, 0.01), (389, 0.01), (390, 0.1), *AKA[1:]]
WRN = [(0, 0.1), (23_399, 0.1), (23_400, 0.02), (46_799, 0.02), (46_800, 0.004),
       (62_399, 0.004), (62_400, 0.0008), (77_999, 0.0008)]
COSINE_200 = [(0, 0.1), (39_000, 0.05), (78_000, 0.0)]
DOCUMENTED_LR = {
    **{f'he2016_resnet{n}_cifar10': HE for n in (20, 32, 44, 56)},
    'he2016_resnet110_cifar10': HE_WARM,
    **{f'preact_resnet{n}_{d}': HE_WARM for n in (164, 1001) for d in ('cifar10', 'cifar100')},
    **{f'akamaster_resnet{n}_cifar10': AKA for n in (20, 32, 44, 56)},
    **{f'akamaster_resnet{n}_cifar10': AKA_WARM for n in (110, 1202)},
    **{f'wrn28_10{v}_{d}': WRN for v in ('', '_dropout') for d in ('cifar10', 'cifar100')},
    'kuangliu_resnet18_cifar10': COSINE_200, 'kuangliu_preact_resnet18_cifar10': COSINE_200,
    'autoaugment_wrn28_10_cifar10': COSINE_200,
    'sam_wrn28_10_cifar10': [(0, 0.1), (351_000, 0.05), (702_000, 0.0)],  # cosine, 1,800 epochs
    # 97 steps of 512 per epoch, 1,940 steps: 0.4 / 25 rising to 0.4 at 25%, then / 25 / 1e4.
    'fast94_resnet18_cifar10': [(0, 0.016), (485, 0.4), (1_940, 1.6e-6)],
    'default': [(0, 0.1), (31_979, 0.1), (31_980, 0.01), (47_970, 0.001), (63_959, 0.001)],
    'digits': [(0, 0.05), (165, 0.025), (330, 0.0)],  # 22 steps of 64 per epoch, 15 epochs
    'plain_resnet_cifar10': [(0, 1e-3), (49_999, 1e-3)],
    'bottleneck96_cifar10': [(0, 0.01), (7_809, 0.01)],
    'resnet18_cifar100': [(0, 1e-3), (9_749, 1e-3)],
    'resnet34_cifar100': [(0, 1e-3), (9_749, 1e-3)],
    # 234 steps of 256 per epoch; x0.9 every 2 epochs from the end of the first (the lesson's
    # StepLR stepped as scheduler.step(epoch): epochs 1-3 at 1e-3, 4-5 at 9e-4, ...).
    'resnet18_fashion_mnist': [(0, 1e-3), (701, 1e-3), (702, 9e-4), (1_169, 9e-4),
                               (1_170, 8.1e-4)],
}


@pytest.mark.parametrize('path', CONFIG_FILES, ids=name_of)
def test_schedule_gives_the_documented_learning_rates(path):
  config = load(path)
  train, _, _ = shape_of(config)
  steps_per_epoch = train // config.batch_size
  total = durations.total_steps(config, steps_per_epoch)
  schedule = optim.create_schedule(config.optim, steps_per_epoch, total, config.batch_size)
  assert name_of(path) in DOCUMENTED_LR, f'{path}: add the learning rates its docstring documents'
  points = DOCUMENTED_LR[name_of(path)]
  assert points[-1][0] <= total
  np.testing.assert_allclose([float(schedule(s)) for s, _ in points], [lr for _, lr in points],
                             rtol=1e-4, atol=1e-9)


# One step each on synthetic 16x16 data (15-25 CPU seconds each, mostly compiling): the he2016
# schedule with the per-pixel mean, which most recipes share; and the fast recipe's bfloat16, EMA,
# label smoothing, reflect crop, cutout, Nesterov and one-cycle. The other recipes' models are
# built above; a WRN-28-10 step would cost as much as either of these again.
SMOKE = ['he2016_resnet20_cifar10',
         pytest.param('fast94_resnet18_cifar10', marks=pytest.mark.slow)]  # ResNet-18 compiles slowly


@pytest.mark.slow
@pytest.mark.parametrize('name', SMOKE)
def test_recipe_trains_a_step_on_synthetic_data(name, tmp_path):
  config = load(os.path.join('configs', 'recipes', name + '.py'))
  _, classes, _ = shape_of(config)
  config.data.dataset = 'synthetic'
  config.data.synthetic.update(image_size=16, num_classes=classes, num_train=8, num_test=8)
  config.update(batch_size=8, eval_batch_size=8, num_epochs=1, num_steps=0, eval_every_epochs=1,
                checkpoint_every_epochs=1, progress_bar=False)
  result = train_and_evaluate(config, str(tmp_path))
  assert result['step'] == 1 and np.isfinite(result['test_loss'])
