"""tensorflow-datasets image classification data: any dataset with a fixed-size uint8 'image'
feature and a class-label feature, read whole into memory.

Image size, channels, classes and label names come from the dataset's info. A dataset that is
not prepared is downloaded only when its host answers; offline, the start fails in seconds
(tfds itself retries for minutes).
"""

import difflib
import re
import socket

import numpy as np

from resnet_flax.data.dataset import Loaded, Split
from resnet_flax.data.tf_cpu import tensorflow
from resnet_flax.errors import UserError

# (host, port) that tfds downloads each dataset from, probed so that an offline start fails fast.
_DOWNLOAD_HOSTS = {
    'cifar10': ('www.cs.toronto.edu', 443),
    'cifar100': ('www.cs.toronto.edu', 443),
    'svhn_cropped': ('ufldl.stanford.edu', 80),
    'fashion_mnist': ('fashion-mnist.s3-website.eu-central-1.amazonaws.com', 80),
}
_DEFAULT_HOST = ('storage.googleapis.com', 443)  # mnist's CVDF mirror and most others
_PROBE_TIMEOUT_S = 5.0
OFFLINE_HINT = ('To train offline now, use the digits config: '
                '`make train CONFIG=configs/digits.py`.')
EXAMPLES = 'cifar10, cifar100, mnist, fashion_mnist or svhn_cropped'


def load(name: str, data_dir: str | None, download: bool, *, train_split: str = 'train',
         test_split: str = 'test', label_feature: str = 'label') -> Loaded:
  """Reads `train_split` and `test_split` of tfds dataset `name`, labelled by `label_feature`."""
  tensorflow()  # hides GPUs from TF before tfds touches it
  builder = _builder(name, data_dir)
  label = _check_features(builder, name, label_feature)
  if not builder.is_prepared():
    _prepare(builder, name, download)
  for key, spec in (('train_split', train_split), ('test_split', test_split)):
    _check_split(builder, name, key, spec)
  return Loaded(_read(builder, name, train_split, label_feature),
                _read(builder, name, test_split, label_feature),
                label.num_classes, tuple(label.names))


def _builder(name: str, data_dir: str | None):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    return tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    close = difflib.get_close_matches(name, tfds.list_builders(), n=3)
    hint = f' Did you mean {" or ".join(map(repr, close))}?' if close else ''
    raise UserError(f'tensorflow-datasets has no dataset named {name!r}.{hint} Set '
                    '--config.data.dataset to a tfds name (`tfds.list_builders()`), to '
                    "'cifar10_files' or 'cifar100_files' with --config.data.cifar_dir for the "
                    "CIFAR pickles, or to 'digits' or 'synthetic' for the offline "
                    'sources.') from None


def _check_features(builder, name: str, label_feature: str):
  """The label feature, once 'image' is a fixed-size uint8 image and the label a class label."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  features = dict(builder.info.features.items())
  found = ', '.join(f'{k} ({type(v).__name__})' for k, v in features.items())
  if label_feature != 'label' and label_feature not in features:
    raise UserError(f'tfds dataset {name!r} has no {label_feature!r} feature (it has {found}); '
                    "--config.data.cifar100_labels='coarse' works with cifar100 only. Set it "
                    "back to 'fine'.")
  image, label = features.get('image'), features.get(label_feature)
  if not isinstance(image, tfds.features.Image) or not isinstance(label, tfds.features.ClassLabel):
    raise UserError(f'tfds dataset {name!r} has the features {found}, but resnet_flax needs an '
                    f"image classification dataset: an 'image' image feature and a "
                    f"'{label_feature}' class-label feature. Pick one such as {EXAMPLES}.")
  shape = tuple(image.shape)
  if image.np_dtype != np.uint8 or len(shape) != 3 or None in shape:
    raise UserError(f"tfds dataset {name!r} stores its images as {image.np_dtype.__name__} of "
                    f'shape {shape}; resnet_flax reads uint8 images of one fixed size (H, W, C) '
                    f'into memory. Pick a dataset such as {EXAMPLES}.')
  return label


def _check_split(builder, name: str, key: str, spec: str) -> None:
  """Each split named in `spec` ('train', 'train[:90%]', 'train+extra', ...) must exist."""
  available = sorted(builder.info.splits)
  for part in spec.split('+'):
    split = re.sub(r'\[.*\]$', '', part.strip())
    if split not in available and split != 'all':
      raise UserError(f'tfds dataset {name!r} has no split {split!r} '
                      f'(--config.data.{key}={spec!r}). Its splits are: '
                      f'{", ".join(available)}. Set --config.data.{key} to one of them '
                      "(slices such as 'train[:90%]' and unions such as 'train+extra' work).")


def _prepare(builder, name: str, download: bool) -> None:
  """Downloads and prepares a missing dataset, failing fast and clearly when that cannot work."""
  where = (f'{name} is not prepared in the TFDS data dir: {builder.data_path} holds no '
           'dataset_info.json.')
  fix = (f'Prepare it on a machine with internet access (`python -c "import '
         f"tensorflow_datasets as tfds; tfds.builder('{name}', data_dir='DIR')"
         f'.download_and_prepare()"`), copy DIR/{name} to this machine and pass '
         '--config.data.data_dir=DIR (or set TFDS_DATA_DIR).')
  if not download:
    raise UserError(f'{where} Downloads are off (--config.data.download=False). {fix} '
                    f'{OFFLINE_HINT}')
  host, port = _DOWNLOAD_HOSTS.get(name, _DEFAULT_HOST)
  reason = probe_host(host, port)
  if reason:
    raise UserError(f'{where} It cannot be downloaded from here: {host} is unreachable '
                    f'({reason}). {fix} {OFFLINE_HINT}')
  try:
    builder.download_and_prepare()
  except Exception as e:  # a download can fail in many library-specific ways
    raise UserError(f'{where} Downloading it failed: {type(e).__name__}: {e}. {fix} '
                    f'{OFFLINE_HINT}') from e


def probe_host(host: str, port: int, timeout: float = _PROBE_TIMEOUT_S) -> str | None:
  """Returns why `host:port` cannot be reached by TCP, or None when it can."""
  try:
    with socket.create_connection((host, port), timeout=timeout):
      return None
  except OSError as e:
    return str(e) or type(e).__name__


def _read(builder, name: str, split: str, label_feature: str) -> Split:
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  # Whole-split batches: batch_size=-1 aborts the process under tfds.testing.mock_data.
  ds = (builder.as_dataset(split=split)
        .map(lambda example: (example['image'], example[label_feature])).batch(10_000))
  batches = list(tfds.as_numpy(ds))
  if not batches:
    raise UserError(f'Split {split!r} of tfds dataset {name!r} holds no examples. Set '
                    '--config.data.train_split / test_split to a split or slice with some.')
  images, labels = zip(*batches)
  return Split(np.concatenate(images), np.concatenate(labels).astype(np.int32))
