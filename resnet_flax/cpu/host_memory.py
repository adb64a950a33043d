"""Keep freed host memory for reuse, so XLA:CPU's per-step buffers do not page-fault every step,
and run steps one at a time, so the heap holds one step's buffers, not two.

Why: XLA:CPU allocates a step's large temporaries with posix_memalign on its own threads and
frees them when the step ends; glibc serves blocks that big with a fresh mmap and returns them
with munmap, so every step faults every page in again and the kernel zeroes them. With one
malloc arena, no mmap for big blocks and no trimming of the heap, the step reuses the same pages
(thread arenas fall back to mmap whatever M_MMAP_MAX says, hence the one arena). The price, a
slower parallel compile contending for that arena, is paid back within a few steps
(benchmarks/NOTES.md).

Why one at a time (`one_step_at_a_time`): with asynchronous dispatch XLA:CPU frees a step's temp
buffer only when the worker that ran it returns, after the step's outputs are ready
(xla/pjrt/cpu/cpu_client.cc), and the next step, queued on that event, allocates its own first:
two or three temp buffers are live at once, and a heap that keeps freed memory keeps them all (a
deep net's activations twice over). With JAX's `jax_cpu_enable_async_dispatch` off, a step runs
on the calling thread and frees its buffers before the call returns. On one device that is as
fast; several devices keep asynchronous dispatch, where it was measured faster (NOTES.md).

It changes the whole process's allocator, so a library call (train_and_evaluate) leaves it
alone: the command line (`tune_for_cli`) applies it to CPU-backend runs unless
`config.cpu_host_memory_tuning` is False; a program embedding the library may call
`keep_freed_memory()` itself, before JAX starts.
"""

import ctypes
import ctypes.util
import importlib.util
import os
import platform
from typing import Any

# mallopt(3) parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8
# glibc stores the trim threshold as a size_t: -1 becomes SIZE_MAX, "never trim". INT_MAX is not
# enough: a deep ResNet's step buffer plus a free neighbour passes it, and the trim then hands
# the pages back, to be faulted in again.
NEVER = -1

# JAX plugins that give it an accelerator backend (importable names).
ACCELERATOR_PLUGINS = ('jax_cuda12_plugin', 'jax_cuda13_plugin', 'jax_rocm7_plugin', 'libtpu')

_applied: str | None = None
_kept = False  # keep_freed_memory tuned the allocator in this process
_one_at_a_time = False  # one_step_at_a_time turned JAX's asynchronous CPU dispatch off


def cpu_backend_expected() -> bool:
  """Whether JAX will run on its CPU backend, judged without starting JAX (which would start
  the threads the tuning must precede): JAX_PLATFORMS says so, or no accelerator plugin is
  installed."""
  platforms = os.environ.get('JAX_PLATFORMS', '').strip().lower()
  if platforms:
    return platforms.split(',')[0] == 'cpu'
  return not any(importlib.util.find_spec(name) for name in ACCELERATOR_PLUGINS)


def tune_for_cli(config: Any) -> str:
  """The command line's choice: tune a CPU-backend run unless `config.cpu_host_memory_tuning`
  is False; says what it did."""
  global _applied
  if not config.get('cpu_host_memory_tuning', True):
    _applied = _applied or 'host allocator left as it is (cpu_host_memory_tuning=False)'
    return _applied
  if not cpu_backend_expected():
    _applied = _applied or 'host allocator left as it is (an accelerator backend)'
    return _applied
  return keep_freed_memory()


def status() -> str:
  """What was done to the host allocator in this process (for the run's start-up lines)."""
  return _applied or ('host allocator left as it is (a library call; the command line tunes it '
                      'on CPU)')


def keep_freed_memory() -> str:
  """Sets glibc's malloc to reuse freed memory (once per process); says what it did.

  Call it before JAX starts its CPU client: threads that already allocated keep their own
  arenas (and with them the mmap per big block). Elsewhere than glibc it does nothing.
  """
  global _applied, _kept
  if _applied is not None:
    return _applied
  libc_name, _ = platform.libc_ver()
  if platform.system() != 'Linux' or libc_name != 'glibc':
    _applied = f'host allocator left as it is ({platform.system()} {libc_name or "libc"})'
    return _applied
  libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
  ok = all(libc.mallopt(param, value) == 1 for param, value in (
      (M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, NEVER)))
  _kept = ok
  _applied = ('host allocator: freed step buffers are reused' if ok
              else 'host allocator: glibc refused mallopt; left as it is')
  return _applied


def one_step_at_a_time(cpu_devices: int) -> str:
  """Where freed memory is kept and steps run on one CPU device, makes JAX's CPU client run each
  computation synchronously, so a step's buffers are freed before the next one allocates; says
  so ('' where it changed nothing). Call it before JAX starts its CPU client."""
  global _applied, _one_at_a_time
  if not _kept or _one_at_a_time or cpu_devices != 1:
    return ''
  _one_at_a_time = True
  import jax  # here, not at the top: keep_freed_memory must precede any thread jax may start
  jax.config.update('jax_cpu_enable_async_dispatch', False)
  _applied += ', one step at a time'
  return _applied
