"""oneDNN convolutions for XLA:CPU: `onednn_conv.cc` built on first use, called through jax.ffi.

Why: XLA:CPU's convolution kernels are slow on the small-channel convs of CIFAR ResNets, where
oneDNN's (PyTorch's CPU kernels) were measured faster (benchmarks/NOTES.md). `conv` is a
custom_vjp whose forward pass, input gradient and weight gradient are each one oneDNN primitive;
tests/test_conv_impls.py checks all three against lax. float32, or bfloat16 where the CPU
computes it natively (`native_bfloat16`: AMX or AVX512-BF16); elsewhere oneDNN would emulate it.

The library comes from the `onednn-cpu-gomp` / `onednn-devel-cpu-gomp` wheels (requirements.txt,
x86-64 Linux). The shared object is compiled once per (source, jaxlib, oneDNN) into
`~/.cache/resnet_flax/ops` (RESNET_FLAX_OPS_CACHE overrides; CXX picks the compiler), which
takes a few seconds; later processes load it. Its SHA-256, written next to it at build time, is
checked before every load: a damaged file (truncated by a full disk or a kill) is rebuilt, never
mapped, which could crash the process. A cache folder that cannot be written (read-only, or
not creatable) gives way to one under the temporary folder.
"""

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile

import filelock
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import DTypeLike

from resnet_flax.errors import UserError
from resnet_flax.models import conv_vjp

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, 'onednn_conv.cc')
TARGETS = {'forward': 'ResnetFlaxOnednnConvForward',
           'input_grad': 'ResnetFlaxOnednnConvInputGrad',
           'weight_grad': 'ResnetFlaxOnednnConvWeightGrad'}
PREFIX = 'resnet_flax_onednn_conv_'
NHWC = ('NHWC', 'HWIO', 'NHWC')
DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16))
# CPU flags (Linux /proc/cpuinfo names) under which oneDNN runs bfloat16 convs in hardware;
# elsewhere it emulates them or has no kernel.
BF16_FLAGS = ('amx_bf16', 'avx512_bf16')
INSTALL = ('pip install -r requirements.txt (it pins onednn-cpu-gomp and onednn-devel-cpu-gomp '
           'for x86-64 Linux)')


def _prefix_paths() -> tuple[str, str]:
  """Where the oneDNN wheels put the library and its headers: the environment's prefix."""
  return os.path.join(sys.prefix, 'lib'), os.path.join(sys.prefix, 'include')


def unavailable() -> str | None:
  """Why oneDNN convolutions cannot run in this environment, or None if they can."""
  if sys.platform != 'linux' or platform.machine() != 'x86_64':
    return f'the oneDNN wheels are x86-64 Linux only (this is {sys.platform} {platform.machine()})'
  lib, include = _prefix_paths()
  if not os.path.exists(os.path.join(lib, 'libdnnl.so.3')):
    return f'oneDNN is not installed in {sys.prefix}: {INSTALL}'
  if not os.path.exists(os.path.join(include, 'dnnl.hpp')):
    return f"oneDNN's headers are not installed in {sys.prefix}: {INSTALL}"
  if not shutil.which(_compiler()):
    return (f'no C++ compiler ({_compiler()!r}) to build the oneDNN convolution op: install g++ '
            'or point CXX at one')
  return None


@functools.cache
def native_bfloat16() -> bool:
  """Whether this CPU computes bfloat16 dot products in hardware (AMX or AVX512-BF16)."""
  try:
    with open('/proc/cpuinfo', encoding='utf-8') as f:
      flags = next((line.split(':', 1)[1].split() for line in f if line.startswith('flags')), [])
  except OSError:
    return False
  return any(flag in flags for flag in BF16_FLAGS)


def dtype_problem(dtype: DTypeLike) -> str | None:
  """Why the op cannot compute in `dtype` on this CPU, or None if it can."""
  dtype = jnp.dtype(dtype)
  if dtype not in DTYPES:
    return f'the oneDNN op computes in float32 or bfloat16, not {dtype}'
  if dtype == jnp.bfloat16 and not native_bfloat16():
    return (f'this CPU has no bfloat16 arithmetic ({" or ".join(BF16_FLAGS)} in /proc/cpuinfo), '
            "so oneDNN's bfloat16 convs would be emulated")
  return None


def _compiler() -> str:
  return os.environ.get('CXX', 'g++')


def _writable(folder: str) -> bool:
  try:
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
      return True
  except OSError:
    return False


def cache_dir() -> str:
  """RESNET_FLAX_OPS_CACHE or ~/.cache/resnet_flax/ops, else (not writable) a folder of this
  user's under the temporary folder."""
  wanted = os.path.expanduser(os.environ.get('RESNET_FLAX_OPS_CACHE', '~/.cache/resnet_flax/ops'))
  if _writable(wanted):
    return wanted
  fallback = os.path.join(tempfile.gettempdir(), f'resnet_flax_ops_{os.getuid()}')
  os.makedirs(fallback, exist_ok=True)
  return fallback


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def _verified(path: str) -> bool:
  """Whether `path` is the library as built: its SHA-256 is the one recorded at build time."""
  try:
    with open(path + '.sha256', encoding='ascii') as f:
      return f.read().strip() == _sha256(path)
  except OSError:
    return False


def _build_command(output: str) -> list[str]:
  lib, include = _prefix_paths()
  return [_compiler(), '-O2', '-std=c++17', '-shared', '-fPIC', '-w',
          f'-I{jax.ffi.include_dir()}', f'-I{include}', SOURCE, f'-L{lib}', '-ldnnl', '-lgomp',
          f'-Wl,-rpath,{lib}', '-o', output]


def _library_path() -> str:
  """The built library for this source, jaxlib and oneDNN install: built now if missing."""
  with open(SOURCE, 'rb') as f:
    key = hashlib.sha256(f.read())
  key.update(' '.join(_build_command('')).encode())
  key.update(jax.lib.__version__.encode() if hasattr(jax.lib, '__version__') else b'')
  key.update(str(os.stat(os.path.join(_prefix_paths()[0], 'libdnnl.so.3')).st_size).encode())
  cache = cache_dir()
  path = os.path.join(cache, f'onednn_conv-{key.hexdigest()[:16]}.so')
  if _verified(path):
    return path
  with filelock.FileLock(path + '.lock'):  # processes of one run build it once
    if _verified(path):
      return path
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
      built = os.path.join(tmp, 'lib.so')
      try:
        result = subprocess.run(_build_command(built), capture_output=True, text=True,
                                check=False)
      except OSError as e:  # CXX names no program that can run
        result = subprocess.CompletedProcess([], 127, '', str(e))
      if result.returncode or not os.path.exists(built):
        said = [line for line in result.stderr.splitlines() if line.strip()]
        raise UserError(
            f'building the oneDNN convolution op with {_compiler()!r} failed (exit status '
            f'{result.returncode}{": " + said[-1].strip() if said else ""}). Fix the toolchain '
            f"({INSTALL}; a C++17 g++, or CXX=...), or train with XLA's own convolutions: "
            f'--config.model.conv_backend=xla.\nThe command: {" ".join(_build_command(built))}'
            f'\n{result.stderr[-2000:]}')
      with open(built + '.sha256', 'w', encoding='ascii') as f:
        f.write(_sha256(built))
      os.replace(built, path)  # atomic: a concurrent reader sees all of it or nothing ...
      os.replace(built + '.sha256', path + '.sha256')  # ... and loads it once this is there
  return path


@functools.cache
def load() -> str:
  """Builds (once) and loads the op, registers its FFI targets for the CPU; the oneDNN version.

  Raises UserError saying what to install where it cannot.
  """
  reason = unavailable()
  if reason:
    raise UserError(f'oneDNN convolutions (--config.model.conv_backend=onednn) cannot run: '
                    f"{reason}. Or use XLA's own convolutions: --config.model.conv_backend=xla.")
  path = _library_path()
  try:
    library = ctypes.cdll.LoadLibrary(path)
  except OSError as e:
    raise UserError(f'loading the oneDNN convolution op {path} failed ({e}). Reinstall oneDNN '
                    f"({INSTALL}), or train with XLA's own convolutions: "
                    '--config.model.conv_backend=xla.') from e
  for name, symbol in TARGETS.items():
    jax.ffi.register_ffi_target(PREFIX + name, jax.ffi.pycapsule(getattr(library, symbol)),
                                platform='cpu')
  library.ResnetFlaxOnednnVersion.restype = ctypes.c_char_p
  return library.ResnetFlaxOnednnVersion().decode()


def _call(target: str, out: jax.ShapeDtypeStruct, a: jax.Array, b: jax.Array,
          strides: tuple[int, int], padding: tuple) -> jax.Array:
  attrs = {'sh': strides[0], 'sw': strides[1], 'ph_lo': padding[0][0], 'ph_hi': padding[0][1],
           'pw_lo': padding[1][0], 'pw_hi': padding[1][1]}
  return jax.ffi.ffi_call(PREFIX + target, out, vmap_method='sequential')(
      a, b, **{k: np.int64(v) for k, v in attrs.items()})


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv(x: jax.Array, w: jax.Array, strides: tuple[int, int], padding: tuple) -> jax.Array:
  """NHWC input, HWIO kernel, both float32 or both bfloat16 (the output's dtype too);
  `padding` as ((lo, hi), (lo, hi)); no dilation, groups."""
  if x.dtype != w.dtype or x.dtype not in DTYPES:
    raise TypeError(f'onednn.conv takes float32 or bfloat16 operands of one dtype, got '
                    f'{x.dtype} and {w.dtype}')
  load()
  out = jax.eval_shape(functools.partial(lax.conv_general_dilated, window_strides=strides,
                                         padding=padding, dimension_numbers=NHWC), x, w)
  return _call('forward', out, x, w, strides, padding)


def _forward(x, w, strides, padding):
  return conv(x, w, strides, padding), (x, w)


def _backward(strides, padding, residuals, dy):
  x, w = residuals
  dx = _call('input_grad', jax.ShapeDtypeStruct(x.shape, x.dtype), dy, w, strides, padding)
  dw = _call('weight_grad', jax.ShapeDtypeStruct(w.shape, w.dtype), x, dy, strides, padding)
  return dx, dw


conv.defvjp(_forward, _backward)

# `conv` behind lax.conv_general_dilated's signature, as flax's nn.Conv calls it: convs it cannot
# take (dilated, grouped, other dtypes) go to lax unchanged.
conv_general_dilated = conv_vjp.lax_signature(conv, DTYPES)
