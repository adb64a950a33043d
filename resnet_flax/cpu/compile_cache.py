"""JAX's persistent compilation cache, on by default: a rerun, a resume or a sweep's next trial
loads the compiled steps instead of compiling them again (benchmarks/NOTES.md: start-up)."""

import os

import jax
import ml_collections

MAX_BYTES = 4 << 30  # least recently used entries go beyond this


def enable(config: ml_collections.ConfigDict) -> str:
  """Points JAX's cache at `config.compilation_cache_dir` ('' : off); says where it is.

  A cache the user already set (JAX_COMPILATION_CACHE_DIR or jax.config) is kept. A cached
  executable is the one a compile would produce, so results are bit-identical either way.
  """
  if jax.config.jax_compilation_cache_dir:
    return f'compilation cache {jax.config.jax_compilation_cache_dir} (set outside the config)'
  if not config.compilation_cache_dir:
    return 'compilation cache off'
  path = os.path.abspath(os.path.expanduser(config.compilation_cache_dir))
  jax.config.update('jax_compilation_cache_dir', path)
  if jax.config.jax_compilation_cache_max_size < 0:
    jax.config.update('jax_compilation_cache_max_size', MAX_BYTES)
  return f'compilation cache {path}'
