"""Keep freed host memory for reuse, so XLA:CPU's per-step buffers do not page-fault every step.

Why: XLA:CPU allocates a step's temporaries (298 MB for ResNet-20 at batch 128, 790 MB for
ResNet-56) with posix_memalign on its own threads, and frees them when the step ends. glibc
serves blocks that big with a fresh mmap and returns them with munmap, so every step faults
every page in again (72,800 minor faults a ResNet-20 step, 201,800 a ResNet-56 step) and the
kernel zeroes them: 0.2-0.7 s of system time a step, ~8% of both cores (on a VM whose faults
cost 7-12 us, a ResNet-110 step took 3 s instead of 1). With one malloc arena, no mmap for big
blocks and no trimming of the heap at all, the step reuses the same pages. (Thread arenas fall
back to mmap whatever M_MMAP_MAX says, hence the one arena.) The price: XLA's parallel compile
contends for that one arena (ResNet-20's step compiles in 1.5 s instead of 1.0), paid back
within ~10 steps. benchmarks/NOTES.md has the numbers.
"""

import ctypes
import ctypes.util
import platform

# mallopt(3) parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8
# glibc stores the trim threshold as a size_t: -1 becomes SIZE_MAX, "never trim". INT_MAX (2 GiB)
# is not enough: a ResNet-110 step's 1.5 GB temp buffer plus a free neighbour passes it, and the
# trim then hands the pages back, to be faulted in again (6 of 30 steps instead of 2).
NEVER = -1

_applied: str | None = None


def keep_freed_memory() -> str:
  """Sets glibc's malloc to reuse freed memory (once per process); says what it did.

  Call it before JAX starts its CPU client: threads that already allocated keep their own
  arenas (and with them the mmap per big block). Elsewhere than glibc it does nothing.
  """
  global _applied
  if _applied is not None:
    return _applied
  libc_name, _ = platform.libc_ver()
  if platform.system() != 'Linux' or libc_name != 'glibc':
    _applied = f'host allocator left as it is ({platform.system()} {libc_name or "libc"})'
    return _applied
  libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
  ok = all(libc.mallopt(param, value) == 1 for param, value in (
      (M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, NEVER)))
  _applied = ('host allocator: freed step buffers are reused' if ok
              else 'host allocator: glibc refused mallopt; left as it is')
  return _applied
