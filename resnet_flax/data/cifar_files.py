"""CIFAR-10/100 from a local folder of the "python version" pickles, for machines without tfds data.

`--config.data.dataset=cifar10_files` (or `cifar100_files`) with `--config.data.cifar_dir=DIR`,
where DIR is the folder that cifar-10-python.tar.gz (cifar-100-python.tar.gz) extracts to,
`cifar-10-batches-py` (`cifar-100-python`), or the folder that holds it. The pickles are read
by an unpickler that accepts only what these files contain (dicts, lists, bytes, numpy arrays),
so a substituted file cannot run code; shapes, keys and label ranges are checked.
"""

import codecs
import dataclasses
import os
import pickle

import numpy as np

from resnet_flax.data.dataset import Loaded, Split
from resnet_flax.errors import UserError

SOURCE_URL = 'https://www.cs.toronto.edu/~kriz/cifar.html'
_PIXELS = 3 * 32 * 32  # one row of b'data': the R, G and B planes of a 32x32 image, row-major


@dataclasses.dataclass(frozen=True)
class _Layout:
  title: str
  folder: str  # what the tarball extracts to
  tarball: str
  train: tuple[str, ...]
  test: str
  meta: str
  labels: dict[str, tuple[bytes, bytes, int]]  # 'fine'/'coarse' -> (label key, names key, classes)


LAYOUTS = {
    'cifar10_files': _Layout(
        'CIFAR-10', 'cifar-10-batches-py', 'cifar-10-python.tar.gz',
        tuple(f'data_batch_{i}' for i in range(1, 6)), 'test_batch', 'batches.meta',
        {'fine': (b'labels', b'label_names', 10)}),
    'cifar100_files': _Layout(
        'CIFAR-100', 'cifar-100-python', 'cifar-100-python.tar.gz', ('train',), 'test', 'meta',
        {'fine': (b'fine_labels', b'fine_label_names', 100),
         'coarse': (b'coarse_labels', b'coarse_label_names', 20)}),
}


def load(name: str, directory: str, labels: str = 'fine') -> Loaded:
  """Reads dataset `name` ('cifar10_files' or 'cifar100_files') from `directory`."""
  layout = LAYOUTS[name]
  if labels not in layout.labels:
    raise UserError(f'--config.data.cifar100_labels={labels!r}: {layout.title} has '
                    f'{" and ".join(map(repr, layout.labels))} labels only.')
  label_key, names_key, num_classes = layout.labels[labels]
  folder = _find_folder(name, directory, layout)
  read = lambda file: _read_split(os.path.join(folder, file), layout, label_key, num_classes)
  train = _to_nhwc([read(file) for file in layout.train])
  names = _read_names(os.path.join(folder, layout.meta), layout, names_key, num_classes)
  return Loaded(train, _to_nhwc([read(layout.test)]), num_classes, names)


def _find_folder(name: str, directory: str, layout: _Layout) -> str:
  """DIR/<tarball folder> if it exists, else DIR itself; every file must be there."""
  fetch = (f'Download {layout.tarball} (the python version) from {SOURCE_URL}, extract it with '
           f'`tar xzf {layout.tarball} -C DIR` and pass --config.data.cifar_dir=DIR.')
  if not directory:
    raise UserError(f'--config.data.dataset={name} reads {layout.title} from a local folder, '
                    f'but --config.data.cifar_dir is not set. {fetch}')
  if not os.path.isdir(directory):
    raise UserError(f'--config.data.cifar_dir={directory}: no such folder. {fetch}')
  nested = os.path.join(directory, layout.folder)
  folder = nested if os.path.isdir(nested) else directory
  files = (*layout.train, layout.test, layout.meta)
  missing = [f for f in files if not os.path.isfile(os.path.join(folder, f))]
  if missing:
    raise UserError(f'{folder} lacks {", ".join(missing)} of the {layout.title} python version '
                    f'(it needs {", ".join(files)}). {fetch}')
  return folder


def _to_nhwc(parts: list[tuple[np.ndarray, np.ndarray]]) -> Split:
  """(N, 3072) rows of R, G and B planes -> one (N, 32, 32, 3) array, each part copied once."""
  images = np.empty((sum(len(d) for d, _ in parts), 32, 32, 3), np.uint8)
  start = 0
  for data, _ in parts:
    images[start:start + len(data)] = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    start += len(data)
  return Split(images, np.concatenate([labels for _, labels in parts]).astype(np.int32))


def _read_split(path: str, layout: _Layout, label_key: bytes, num_classes: int,
                ) -> tuple[np.ndarray, np.ndarray]:
  """One file's checked (images as rows, labels)."""
  batch = _unpickle(path, layout)
  data, labels = batch.get(b'data'), batch.get(label_key)
  if not isinstance(data, np.ndarray) or labels is None:
    raise _corrupt(path, layout, f'it lacks the {b"data"!r} array or the {label_key!r} list '
                   f'(keys: {sorted(batch)})')
  labels = np.asarray(labels)
  if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS:
    raise _corrupt(path, layout, f'its images are {data.dtype} {data.shape}, not uint8 '
                   f'(N, {_PIXELS})')
  if labels.shape != (len(data),) or labels.dtype.kind not in 'iu':
    raise _corrupt(path, layout, f'it holds {len(data)} images but labels of shape '
                   f'{labels.shape} and type {labels.dtype}')
  if len(labels) and not (labels.min() >= 0 and labels.max() < num_classes):
    raise _corrupt(path, layout, f'its labels span {labels.min()}..{labels.max()}, not '
                   f'0..{num_classes - 1}')
  return data, labels


def _read_names(path: str, layout: _Layout, names_key: bytes, num_classes: int,
                ) -> tuple[str, ...]:
  names = _unpickle(path, layout).get(names_key)
  if (not isinstance(names, list) or len(names) != num_classes
      or not all(isinstance(n, (bytes, str)) for n in names)):
    raise _corrupt(path, layout, f'its {names_key!r} is not a list of {num_classes} names')
  return tuple(n.decode('utf-8', 'replace') if isinstance(n, bytes) else n for n in names)


def _unpickle(path: str, layout: _Layout) -> dict:
  try:
    with open(path, 'rb') as f:
      obj = _Unpickler(f).load()
  # A damaged pickle fails in many ways (EOFError, UnpicklingError, ValueError from numpy, ...).
  except Exception as e:  # pylint: disable=broad-except
    raise _corrupt(path, layout, f'{type(e).__name__}: {e}') from e
  if not isinstance(obj, dict):
    raise _corrupt(path, layout, f'it holds a {type(obj).__name__}, not a dict')
  return obj


def _corrupt(path: str, layout: _Layout, reason: str) -> UserError:
  return UserError(f'{path} is not a readable {layout.title} python-version file ({reason}); '
                   f'it is probably truncated or damaged. Download {layout.tarball} from '
                   f'{SOURCE_URL} again, extract it over the old copy and rerun.')


def _reduce_function(protocol: int):
  return np.zeros(1, np.uint8).__reduce_ex__(protocol)[0]


# Everything the CIFAR pickles import: numpy's array rebuilders (numpy.core in the original
# Python 2 files, numpy._core when re-saved by numpy 2) and the bytes helper of protocol-2
# pickles written by Python 3. Any other global is refused: unpickling it could run code.
_ALLOWED = {
    (module, '_reconstruct'): _reduce_function(2)
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray')}
_ALLOWED.update({(module, '_frombuffer'): _reduce_function(5)
                 for module in ('numpy.core.numeric', 'numpy._core.numeric')})
_ALLOWED.update({('numpy', 'ndarray'): np.ndarray, ('numpy', 'dtype'): np.dtype,
                 ('_codecs', 'encode'): codecs.encode})


class _Unpickler(pickle.Unpickler):
  """Python 2 pickles: str -> bytes (encoding='bytes', as the CIFAR page says); few globals."""

  def __init__(self, file):
    super().__init__(file, encoding='bytes')

  def find_class(self, module: str, name: str):
    if (module, name) not in _ALLOWED:
      raise pickle.UnpicklingError(f'it imports {module}.{name}, which no CIFAR file does')
    return _ALLOWED[module, name]
