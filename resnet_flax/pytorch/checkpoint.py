"""Reads PyTorch state dicts (.pth/.th) into NumPy arrays, without torch and without running code.

`torch.load` unpickles whatever a file names, so a downloaded checkpoint can run any
code. This reader's unpickler resolves only the few globals that a state dict of
tensors needs and refuses every other one with a `UserError`, before anything runs.

Both serialisations `torch.save` has written are read: the zip archive of
torch >= 1.6 (`<name>/data.pkl` plus one `<name>/data/<key>` record per storage)
and the older legacy stream (magic number, protocol version and sys_info pickles,
the main pickle, the list of storage keys, then each storage's raw bytes after an
int64 element count). Files written on big-endian machines are refused.
"""

import collections
import os
import pickle
import zipfile
from typing import IO, Any, Callable, NamedTuple

import ml_dtypes  # a dependency of jax; NumPy has no bfloat16
import numpy as np

from resnet_flax.errors import UserError

_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_LEGACY_PROTOCOL = 1001
_ZIP_MAGIC = b'PK\x03\x04'

# Element types of the `torch.<Name>Storage` classes a pickle names (torch.cuda.* in
# files saved from the GPU by torch < 1.12, as akamaster's pretrained .th files were).
_STORAGE_DTYPES = {
    'DoubleStorage': '<f8', 'FloatStorage': '<f4', 'HalfStorage': '<f2',
    'BFloat16Storage': ml_dtypes.bfloat16, 'LongStorage': '<i8', 'IntStorage': '<i4',
    'ShortStorage': '<i2', 'CharStorage': 'i1', 'ByteStorage': 'u1', 'BoolStorage': '?',
    'ComplexFloatStorage': '<c8', 'ComplexDoubleStorage': '<c16',
}


class _StorageType(NamedTuple):
  """What a `torch.*Storage` global unpickles to: just its element type."""
  dtype: np.dtype


class _Storage(NamedTuple):
  """A storage named by a persistent id; its bytes sit outside the pickle."""
  key: str
  dtype: np.dtype
  numel: int


class _Tensor(NamedTuple):
  """A tensor as a strided view of a storage, read only if it is in the returned state dict."""
  storage: _Storage
  offset: int
  size: tuple[int, ...]
  stride: tuple[int, ...]


class _Call(NamedTuple):
  """An allowed callable; immutable, so a pickle's BUILD opcode cannot tamper with it."""
  fn: Callable[..., Any]

  def __call__(self, *args: Any) -> Any:
    return self.fn(*args)


def _naturals(xs: Any) -> bool:
  return isinstance(xs, tuple) and all(isinstance(x, int) and x >= 0 for x in xs)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *unused: Any) -> _Tensor:
  """torch._utils._rebuild_tensor(_v2): requires_grad, hooks and metadata do not matter here."""
  if not (isinstance(storage, _Storage) and _naturals((offset,)) and _naturals(size)
          and _naturals(stride) and len(size) == len(stride)):
    raise ValueError('a tensor record is malformed')
  return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data: Any, *unused: Any) -> _Tensor:
  """torch._utils._rebuild_parameter: an nn.Parameter is its tensor."""
  if not isinstance(data, _Tensor):
    raise ValueError('a parameter record holds no tensor')
  return data


_ALLOWED = {
    ('torch._utils', '_rebuild_tensor_v2'): _Call(_rebuild_tensor),
    ('torch._utils', '_rebuild_tensor'): _Call(_rebuild_tensor),
    ('torch._utils', '_rebuild_parameter'): _Call(_rebuild_parameter),
    ('torch', 'UntypedStorage'): _StorageType(np.dtype('u1')),
    ('torch.storage', 'UntypedStorage'): _StorageType(np.dtype('u1')),
    ('collections', 'OrderedDict'): collections.OrderedDict,
    **{(module, name): _StorageType(np.dtype(dtype))
       for module in ('torch', 'torch.cuda') for name, dtype in _STORAGE_DTYPES.items()},
}


class _Unpickler(pickle.Unpickler):
  """Rebuilds tensors and dicts; refuses every other global, which is how a pickle runs code."""

  def __init__(self, file: IO[bytes], path: str, storages: dict[str, _Storage]):
    super().__init__(file, encoding='utf-8')  # what torch.load uses for Python 2 pickles
    self._path = path
    self._storages = storages

  def find_class(self, module: str, name: str) -> Any:
    if (module, name) not in _ALLOWED:
      raise UserError(
          f'{self._path} tries to import {module}.{name}, which was refused: only plain state '
          'dicts (tensors in dicts) are accepted, because unpickling anything else can run '
          'arbitrary code. If you trust the file, load it with torch and save just the '
          'model\'s state_dict().')
    return _ALLOWED[module, name]

  def persistent_load(self, pid: Any) -> _Storage:
    """('storage', type, key, location, numel) in zip files, plus view metadata in legacy ones."""
    if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == 'storage'
            and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)
            and isinstance(pid[4], int) and pid[4] >= 0):
      raise ValueError(f'unknown persistent id {pid!r:.80}')
    if len(pid) == 6 and pid[5] is not None:
      raise ValueError('storage views of torch < 0.4 are not supported')
    storage = _Storage(pid[2], pid[1].dtype, pid[4])
    if self._storages.setdefault(storage.key, storage) != storage:
      raise ValueError(f'storage {storage.key} is declared twice, differently')
    return storage


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """The tensors of a PyTorch checkpoint by name, as NumPy arrays in the file's dtypes.

  A checkpoint dict that wraps the state dict under 'state_dict' or 'model' (as
  training scripts save it, with the epoch and best accuracy beside it) gives that
  state dict. The 'module.' prefix nn.DataParallel adds is stripped when every name
  has it. Entries that are not tensors are dropped. Raises UserError for a file that
  is missing, corrupt, truncated, not a checkpoint, or that names any global beyond
  those of a plain state dict.
  """
  path = os.fspath(path)
  try:
    with open(path, 'rb') as f:
      is_zip = f.read(len(_ZIP_MAGIC)) == _ZIP_MAGIC
      f.seek(0)
      obj, blobs = _read_zip(f, path) if is_zip else _read_legacy(f, path)
      tensors = _tensors(_unwrap(obj, path), path)
      return {name: _materialize(t, blobs) for name, t in tensors.items()}
  except UserError:
    raise
  except OSError as e:
    raise UserError(f'Cannot read the PyTorch checkpoint {path}: {e}.') from e
  except Exception as e:  # unpickling garbage raises anything from KeyError to OverflowError
    raise UserError(
        f'{path} is not a readable PyTorch checkpoint ({type(e).__name__}: {e}). Expected a file '
        'written by torch.save; if it was downloaded, it may be truncated: fetch it again.') from e


def _read_zip(f: IO[bytes], path: str) -> tuple[Any, dict[str, bytes]]:
  """torch >= 1.6: every record lives under one top-level folder named after the saved file."""
  storages: dict[str, _Storage] = {}
  with zipfile.ZipFile(f) as archive:
    names = archive.namelist()
    prefix = names[0].split('/')[0] if names else ''
    if f'{prefix}/data.pkl' not in names:
      raise ValueError('the zip archive has no data.pkl')
    if f'{prefix}/byteorder' in names and archive.read(f'{prefix}/byteorder') != b'little':
      raise _big_endian(path)
    with archive.open(f'{prefix}/data.pkl') as pkl:
      obj = _Unpickler(pkl, path, storages).load()
    blobs = {key: archive.read(f'{prefix}/data/{key}') for key in storages}
  return obj, blobs


def _read_legacy(f: IO[bytes], path: str) -> tuple[Any, dict[str, bytes]]:
  """torch < 1.6, or _use_new_zipfile_serialization=False: pickles, then the raw storages."""
  storages: dict[str, _Storage] = {}
  load = _Unpickler(f, path, storages).load  # one pickle per call, leaving f just past it
  if load() != _LEGACY_MAGIC:
    raise ValueError('it starts with neither a zip header nor torch\'s magic number')
  if load() != _LEGACY_PROTOCOL:
    raise ValueError('unknown legacy protocol version')
  if not load().get('little_endian'):
    raise _big_endian(path)
  obj = load()
  blobs = {}
  for key in load():
    storage = storages[key]
    count = int.from_bytes(_read_exactly(f, 8), 'little', signed=True)
    if count != storage.numel:
      raise ValueError(f'storage {key} holds {count} elements, the pickle says {storage.numel}')
    blobs[key] = _read_exactly(f, count * storage.dtype.itemsize)
  return obj, blobs


def _big_endian(path: str) -> UserError:
  return UserError(f'{path} was saved on a big-endian machine; only little-endian files are read.')


def _read_exactly(f: IO[bytes], n: int) -> bytes:
  data = f.read(n)
  if len(data) != n:
    raise EOFError(f'the file ends {n - len(data)} bytes early')
  return data


def _unwrap(obj: Any, path: str) -> dict:
  """The state dict itself, out of a training checkpoint that wraps it."""
  if not isinstance(obj, dict):
    raise UserError(f'{path} holds a {type(obj).__name__}, not a state dict.')
  for key in ('state_dict', 'model', 'net'):  # akamaster, torchvision recipes, kuangliu
    if isinstance(obj.get(key), dict):
      return obj[key]
  return obj


def _tensors(state_dict: dict, path: str) -> dict[str, _Tensor]:
  """Tensor entries by name, without nn.DataParallel's 'module.' prefix."""
  tensors = {k: v for k, v in state_dict.items() if isinstance(k, str) and isinstance(v, _Tensor)}
  if not tensors:
    keys = ', '.join(map(str, list(state_dict)[:10]))
    raise UserError(
        f'{path} holds no tensors (its keys: {keys or "none"}); it is not a state dict.')
  if all(k.startswith('module.') for k in tensors):
    tensors = {k.removeprefix('module.'): v for k, v in tensors.items()}
  return tensors


def _materialize(tensor: _Tensor, blobs: dict[str, bytes]) -> np.ndarray:
  """Copies the view out of its storage, after checking it stays inside it."""
  storage = tensor.storage
  flat = np.frombuffer(blobs[storage.key], storage.dtype)
  if len(flat) != storage.numel:
    raise ValueError(f'storage {storage.key} has {len(flat)} elements, not {storage.numel}')
  last = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.size, tensor.stride))
  if (last >= len(flat) if all(tensor.size) else tensor.offset > len(flat)):
    raise ValueError(f'a tensor reaches past the end of storage {storage.key}')
  strides = [s * flat.itemsize for s in tensor.stride]
  return np.lib.stride_tricks.as_strided(flat[tensor.offset:], tensor.size, strides).copy()
