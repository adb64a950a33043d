"""Who tunes the host allocator: the command line on CPU-backend runs, unless the config says
not to; never train_and_evaluate as a library call."""

import json
import os
import platform
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(
    platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc',
    reason="the setting is glibc malloc's")

# Prints what the process did to the allocator and whether a 64 MiB block came from the heap
# (tuned: no mmap for big blocks) rather than from its own mapping (glibc's default).
WORKER = r'''
import ctypes, json, sys
sys.path.insert(0, sys.argv[1])
from configs import default
from resnet_flax.cpu import host_memory, runtime
config = default.get_config()
how = sys.argv[2]
if how == 'cli_off':
  config.cpu_host_memory_tuning = False
if how.startswith('cli'):
  host_memory.tune_for_cli(config)  # then runtime.prepare, as train.py does
config.compilation_cache_dir = ''
said = runtime.prepare(config).host_memory
libc = ctypes.CDLL('libc.so.6')
libc.sbrk.restype = libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes, libc.sbrk.argtypes = [ctypes.c_size_t], [ctypes.c_long]
start = libc.sbrk(0)
libc.malloc(64 << 20)
import jax
print(json.dumps({'said': said, 'heap': libc.sbrk(0) - start >= 32 << 20, 'grown': libc.sbrk(0) - start,
                  'async': jax.config.read('jax_cpu_enable_async_dispatch')}))
'''


def run(how: str, **env: str) -> dict:
  out = subprocess.run([sys.executable, '-c', WORKER, ROOT, how],
                       env={**os.environ, 'PYTHONPATH': ROOT, **env}, capture_output=True,
                       text=True, timeout=120, check=True).stdout
  return json.loads(out.strip().splitlines()[-1])


def test_command_line_tunes_a_cpu_run():
  got = run('cli', JAX_PLATFORMS='cpu')
  assert got['heap'] and 'reused' in got['said'], got
  assert not got['async'] and 'one step at a time' in got['said'], got


def test_config_switch_turns_it_off():
  got = run('cli_off', JAX_PLATFORMS='cpu')
  assert not got['heap'] and 'cpu_host_memory_tuning=False' in got['said'], got
  assert got['async'], got  # JAX's own dispatch, as the allocator is


def test_several_cpu_devices_keep_asynchronous_dispatch():
  got = run('cli', JAX_PLATFORMS='cpu', XLA_FLAGS='--xla_force_host_platform_device_count=4')
  assert got['heap'] and got['async'] and 'one step at a time' not in got['said'], got


def test_accelerator_runs_are_left_alone():
  got = run('cli', JAX_PLATFORMS='cuda')
  assert not got['heap'] and 'accelerator' in got['said'], got


def test_library_call_leaves_the_allocator_alone():
  got = run('library', JAX_PLATFORMS='cpu')
  assert not got['heap'] and 'library call' in got['said'], got
