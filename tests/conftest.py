"""Shared fixtures: small configs that run the real code path in seconds."""

import os

import tempfile  # noqa: E402

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# One persistent compilation cache for the session and the CLI subprocesses it starts: most tests
# compile the same small ResNet steps. Cached executables are the same code, so results are equal.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', tempfile.mkdtemp(prefix='resnet_flax_jax_cache_'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')

import jax  # noqa: E402
import pytest  # noqa: E402

from configs import default  # noqa: E402
from resnet_flax.training import config_help  # noqa: E402


def pytest_configure(config):
  """The pytest process keeps one CPU device whichever test first starts JAX (train_and_evaluate
  would otherwise split the CPU: parallel.cpu_devices=0). A hook, not import-time code: worker
  scripts import this module for small_config and choose their own devices."""
  del config
  jax.config.update('jax_num_cpu_devices', 1)


def small_config(**overrides):
  """The default config shrunk to a ResNet-8 (75,290 parameters) on a tiny synthetic dataset.

  ResNet-8 is the default's ResNet-20 with one block a stage instead of three: the same code
  paths, compiled in a fraction of the time. Tests about ResNet-20 itself say model.name.
  """
  config = default.get_config()
  config.model.name = 'resnet8'
  config.data.dataset = 'synthetic'
  config.data.synthetic.num_train = 96
  config.data.synthetic.num_test = 40
  config.data.synthetic.image_size = 16
  config.batch_size = 32
  config.eval_batch_size = 16  # 40 test images: the last batch is padded
  config.num_epochs = 2
  config.optim.schedule = 'cosine'
  config.log_every_steps = 1
  config.progress_bar = False
  return config_help.set_fields(config, overrides)


@pytest.fixture
def make_config():
  return small_config


# Tracing the two deepest nets (1202 and 1001 layers) takes seconds per test even for shapes or
# counts: their cases run with the slow tests (make ci), the rest of each table stays fast.
_DEEPEST = ('resnet1202', 'preact_resnet1001')


def pytest_collection_modifyitems(config, items):
  del config
  for item in items:
    params = getattr(getattr(item, 'callspec', None), 'id', '')
    if item.nodeid.startswith('tests/test_models.py') and any(n in params for n in _DEEPEST):
      item.add_marker(pytest.mark.slow)
