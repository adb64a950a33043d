"""The oneDNN op fails soft: under conv_backend=auto a build or load that fails falls back to
XLA's convs with one warning line; a damaged cached library is rebuilt, never loaded; a cache
folder that cannot be written gives way to a temporary one."""

import logging
import os
import platform
import subprocess
import sys

import pytest

from resnet_flax.cpu import backend, onednn
from resnet_flax.errors import UserError
from tests.conftest import small_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(
    sys.platform != 'linux' or platform.machine() != 'x86_64',
    reason='the oneDNN wheels are x86-64 Linux only')


@pytest.fixture
def broken_compiler(tmp_path, monkeypatch):
  """A fresh cache folder and a compiler that always fails; `load` forgets earlier loads."""
  monkeypatch.setenv('RESNET_FLAX_OPS_CACHE', str(tmp_path / 'ops'))
  monkeypatch.setenv('CXX', '/bin/false')
  onednn.load.cache_clear()
  yield tmp_path / 'ops'
  onednn.load.cache_clear()


class Records(logging.Handler):
  def __init__(self):
    super().__init__()
    self.records = []

  def emit(self, record):
    self.records.append(record)


def test_auto_falls_back_to_xla_with_one_warning(broken_compiler):
  logger, handler = logging.getLogger('resnet_flax'), Records()
  logger.addHandler(handler)  # the console logger may not propagate (reporting/console.py)
  try:
    name, why = backend.resolve(small_config().model)
  finally:
    logger.removeHandler(handler)
  assert name == 'xla' and 'unavailable' in why, why
  (record,) = handler.records
  assert record.levelno == logging.WARNING
  line = record.getMessage()
  assert '\n' not in line and "/bin/false" in line and 'conv_backend=xla' in line, line


def test_explicit_onednn_still_fails_clearly(broken_compiler):
  with pytest.raises(UserError, match="building the oneDNN convolution op with '/bin/false' failed"):
    backend.resolve(small_config(**{'model.conv_backend': 'onednn'}).model)


def library_path(cache) -> str:
  """The path `load` builds to (with the compiler it will use), found by failing a build."""
  with pytest.raises(UserError):
    onednn.load()
  return os.path.join(cache, os.listdir(cache)[0].removesuffix('.lock'))


@pytest.mark.parametrize('sidecar', ['missing', 'stale'])
def test_a_damaged_cached_library_is_rebuilt_not_loaded(broken_compiler, sidecar):
  path = library_path(broken_compiler)
  with open(path, 'wb') as f:
    f.write(b'\x7fELF' + b'\0' * 60)  # a truncated library: mapping it could crash the process
  if sidecar == 'stale':
    with open(path + '.sha256', 'w') as f:
      f.write('0' * 64)
  with pytest.raises(UserError, match='building the oneDNN convolution op'):
    onednn.load()  # it went to rebuild (and the compiler fails) instead of loading the file


def test_unwritable_cache_falls_back_to_a_temporary_folder(tmp_path, monkeypatch):
  blocker = tmp_path / 'a_file'
  blocker.write_text('')
  monkeypatch.setenv('RESNET_FLAX_OPS_CACHE', str(blocker / 'ops'))  # cannot be created
  folder = onednn.cache_dir()
  assert not folder.startswith(str(blocker)) and os.access(folder, os.W_OK)
  monkeypatch.setenv('RESNET_FLAX_OPS_CACHE', str(tmp_path / 'ok'))
  assert onednn.cache_dir() == str(tmp_path / 'ok')


# A fresh process builds (or loads) the op, prints its library's path and a conv's output.
WORKER = r'''
import jax.numpy as jnp
from resnet_flax.cpu import onednn
onednn.load()
x, w = jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 3))
print(onednn._library_path(), float(onednn.conv(x, w, (1, 1), ((1, 1), (1, 1)))[0, 1, 1, 0]))
'''


@pytest.mark.slow
def test_truncated_library_is_rebuilt_in_a_new_process(tmp_path):
  env = {**os.environ, 'RESNET_FLAX_OPS_CACHE': str(tmp_path), 'PYTHONPATH': ROOT}
  outputs = []
  for _ in range(2):  # built into an empty cache, then truncated (a full disk), then loaded
    result = subprocess.run([sys.executable, '-c', WORKER], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]  # a mapped truncated file: SIGBUS
    path, value = result.stdout.strip().splitlines()[-1].split()
    outputs.append(value)
    with open(path, 'r+b') as f:
      f.truncate(os.path.getsize(path) // 2)
  assert outputs == ['18.0', '18.0']
