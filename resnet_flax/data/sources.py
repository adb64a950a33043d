"""Where images come from: tfds datasets, scikit-learn's digits, and synthetic data.

Every source returns a `Dataset` of in-memory uint8 NHWC arrays. CIFAR-scale data
fits in host memory, which makes the training order a pure function of (seed, epoch).
"""

import dataclasses
import difflib
import socket

import ml_collections
import numpy as np

from resnet_flax.data.tf_cpu import tensorflow
from resnet_flax.errors import UserError

# Per-channel mean and std in [0, 1] units (../shared/reference/cifar_results.md).
NORMALIZATION = {
    'cifar10': ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    'cifar100': ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
# Hosts that tfds downloads each dataset from; probed so that an offline start fails in seconds.
_DOWNLOAD_HOSTS = {'cifar10': 'www.cs.toronto.edu', 'cifar100': 'www.cs.toronto.edu'}
_PROBE_TIMEOUT_S = 5.0
OFFLINE_HINT = ('To train offline now, use the digits config: '
                '`make train CONFIG=configs/digits.py`.')


@dataclasses.dataclass(frozen=True)
class Split:
  images: np.ndarray  # (N, H, W, C) uint8
  labels: np.ndarray  # (N,) int32

  def __len__(self) -> int:
    return len(self.labels)


@dataclasses.dataclass(frozen=True)
class Dataset:
  name: str
  train: Split
  test: Split
  num_classes: int
  mean: tuple[float, ...]  # per channel, [0, 1] units
  std: tuple[float, ...]
  label_names: tuple[str, ...]

  @property
  def image_shape(self) -> tuple[int, int, int]:
    return tuple(self.train.images.shape[1:])


def load_dataset(config: ml_collections.ConfigDict) -> Dataset:
  """Loads `config.data.dataset`; raises UserError with guidance when it cannot."""
  name = config.data.dataset
  if name == 'digits':
    return _digits()
  if name == 'synthetic':
    return _synthetic(config.data.synthetic)
  return _tfds(name, config.data.data_dir or None, config.data.download)


def _with_stats(name: str, train: Split, test: Split, num_classes: int,
                label_names: tuple[str, ...] | None = None) -> Dataset:
  if name in NORMALIZATION:
    mean, std = NORMALIZATION[name]
  else:  # computed from the training images, never the test images
    pixels = train.images.reshape(-1, train.images.shape[-1]).astype(np.float64) / 255.0
    mean, std = tuple(pixels.mean(0).tolist()), tuple(np.maximum(pixels.std(0), 1e-3).tolist())
  names = tuple(label_names or (str(i) for i in range(num_classes)))
  return Dataset(name, train, test, num_classes, tuple(mean), tuple(std), names)


def _digits() -> Dataset:
  """scikit-learn's 1,797 handwritten digits, 8x8 in 0..16, upscaled bilinearly to 32x32.

  Fixed stratified split: 360 test images (36 per class, give or take one), drawn by
  `train_test_split(..., random_state=0)`; the other 1,437 train.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  from sklearn.model_selection import train_test_split  # pylint: disable=g-import-not-at-top
  digits = load_digits()
  small = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
  big = np.stack([np.asarray(Image.fromarray(im).resize((32, 32), Image.BILINEAR)) for im in small])
  images, labels = big[..., None], digits.target.astype(np.int32)
  train, test = train_test_split(np.arange(len(labels)), test_size=360, stratify=labels,
                                 random_state=0)
  return _with_stats('digits', Split(images[train], labels[train]),
                     Split(images[test], labels[test]), 10)


def _synthetic(cfg: ml_collections.ConfigDict) -> Dataset:
  """Random images whose label is learnable: each class is a noisy copy of its own prototype."""
  rng = np.random.default_rng(cfg.seed)
  shape = (cfg.image_size, cfg.image_size, cfg.channels)
  prototypes = rng.integers(0, 256, size=(cfg.num_classes, *shape))

  def split(n: int) -> Split:
    labels = rng.integers(0, cfg.num_classes, size=n).astype(np.int32)
    noise = rng.normal(0.0, cfg.noise * 255.0, size=(n, *shape))
    return Split(np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8), labels)

  return _with_stats('synthetic', split(cfg.num_train), split(cfg.num_test), cfg.num_classes)


def _tfds(name: str, data_dir: str | None, download: bool) -> Dataset:
  tensorflow()  # hides GPUs from TF before tfds touches it
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    close = difflib.get_close_matches(name, tfds.list_builders(), n=3)
    hint = f' Did you mean {" or ".join(map(repr, close))}?' if close else ''
    raise UserError(f'tensorflow-datasets has no dataset named {name!r}.{hint} Set '
                    '--config.data.dataset to a tfds name (`tfds.list_builders()`), or to '
                    "'digits' or 'synthetic' for the offline sources.") from None
  if not builder.is_prepared():
    _prepare(builder, name, download)
  splits = set(builder.info.splits)
  if not {'train', 'test'} <= splits:
    raise UserError(f'Dataset {name!r} has splits {sorted(splits)}; resnet_flax needs '
                    "'train' and 'test'.")
  label = builder.info.features['label']
  return _with_stats(name, _tfds_split(builder, 'train'), _tfds_split(builder, 'test'),
                     label.num_classes, tuple(label.names))


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
  host = _DOWNLOAD_HOSTS.get(name, 'storage.googleapis.com')
  reason = probe_host(host, 443)
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


def _tfds_split(builder, split: str) -> Split:
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  # Whole-split batches: batch_size=-1 aborts the process under tfds.testing.mock_data.
  ds = builder.as_dataset(split=split, as_supervised=True).batch(10_000)
  images, labels = zip(*tfds.as_numpy(ds))
  return Split(np.concatenate(images), np.concatenate(labels).astype(np.int32))
