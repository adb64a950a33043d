"""Where images come from, and `load_dataset`, which turns config.data into a `Dataset`.

Sources: any tfds image classification dataset (tfds_source.py), the CIFAR python pickles in
a local folder (cifar_files.py), scikit-learn's digits and synthetic data (here). Loading
also carves the validation split and fixes the normalisation, and checks the data and
augmentation settings, so that every data mistake stops the run at start.
"""

import ml_collections
import numpy as np

from resnet_flax.data import augment, cifar_files, tfds_source
from resnet_flax.data.dataset import (
  Dataset,
  Loaded,
  Split,
  check_image_shape,
  input_shape,
)
from resnet_flax.data.validation_split import carve_validation
from resnet_flax.errors import UserError

__all__ = ['NORMALIZATION', 'Dataset', 'Split', 'load_dataset']

# Per-channel mean and std in [0, 1] units (docs/reference.md), for these
# datasets' images whatever their labels, split slicing or validation carve-out. Others are
# computed from their training images.
NORMALIZATION = {
    'cifar10': ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    'cifar100': ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
NORMALIZATION['cifar10_files'] = NORMALIZATION['cifar10']
NORMALIZATION['cifar100_files'] = NORMALIZATION['cifar100']
NORMALIZATIONS = ('per_channel', 'per_pixel_mean')
CIFAR100_LABELS = ('fine', 'coarse')
# config.data fields that configs saved before they existed (older checkpoints) lack; these
# values give the behaviour those runs had.
_DEFAULTS = {'data_dir': '', 'download': True, 'image_size': 0, 'cifar_dir': '',
             'cifar100_labels': 'fine', 'train_split': 'train', 'test_split': 'test',
             'validation_size': 0, 'grayscale_to_rgb': False, 'normalization': 'per_channel',
             'mean': (), 'std': ()}


def load_dataset(config: ml_collections.ConfigDict) -> Dataset:
  """Loads `config.data.dataset`; raises UserError with guidance when it cannot."""
  name = config.data.dataset
  opts = {key: config.data.get(key, default) for key, default in _DEFAULTS.items()}
  _check_options(name, opts)
  loaded = _load(name, config.data, opts)
  train, validation = loaded.train, None
  if opts['validation_size']:
    train, validation = carve_validation(loaded.train, opts['validation_size'])
  mean, std = NORMALIZATION.get(name) or _channel_stats(train)
  mean, std = opts['mean'] or mean, opts['std'] or std
  pixel_mean = None
  if opts['normalization'] == 'per_pixel_mean':  # never from validation or test images
    pixel_mean = (train.images.mean(0, dtype=np.float64) / 255.0).astype(np.float32)
  ds = Dataset(name, train, loaded.test, loaded.num_classes, tuple(mean), tuple(std),
               loaded.label_names, validation, pixel_mean, bool(opts['grayscale_to_rgb']))
  shape = input_shape(ds, opts['image_size'])
  check_image_shape(shape)
  _check_stats(mean, std, shape[-1])
  if 'augment' in config:
    augment.Augment.from_config(config.augment).check(shape)
  return ds


def _check_options(name: str, opts: dict) -> None:
  if opts['image_size'] < 0:
    raise UserError(f'--config.data.image_size={opts["image_size"]} must be a positive size to '
                    'resize to, or 0 for the native size.')
  for key, allowed in (('normalization', NORMALIZATIONS), ('cifar100_labels', CIFAR100_LABELS)):
    if opts[key] not in allowed:
      raise UserError(f'--config.data.{key}={opts[key]!r}: use one of '
                      f'{", ".join(map(repr, allowed))}.')
  if name in ('digits', 'synthetic') or name in cifar_files.LAYOUTS:
    for key in ('train_split', 'test_split'):
      if opts[key] != _DEFAULTS[key]:
        raise UserError(f'--config.data.{key}={opts[key]!r} selects a tfds split; {name} has '
                        f'fixed train and test splits. Leave it at {_DEFAULTS[key]!r} (or use '
                        'validation_size to hold out training images).')
  if name in ('digits', 'synthetic') and opts['cifar100_labels'] != 'fine':
    raise UserError(f"--config.data.cifar100_labels='coarse' applies to CIFAR-100 only, not "
                    f"{name}. Set it back to 'fine'.")


def _check_stats(mean: tuple[float, ...], std: tuple[float, ...], channels: int) -> None:
  if len(mean) != channels or len(std) != channels or min(std) <= 0:
    raise UserError(f'--config.data.mean={tuple(mean)} and --config.data.std={tuple(std)} must '
                    f'each give one value per input channel ({channels}), in [0, 1] units, with '
                    'positive stds; leave them empty, (), for the dataset\'s own statistics.')


def _load(name: str, data: ml_collections.ConfigDict, opts: dict) -> Loaded:
  if name == 'digits':
    return _digits()
  if name == 'synthetic':
    return _synthetic(data.synthetic)
  if name in cifar_files.LAYOUTS:
    return cifar_files.load(name, opts['cifar_dir'], opts['cifar100_labels'])
  label = 'coarse_label' if opts['cifar100_labels'] == 'coarse' else 'label'
  return tfds_source.load(name, opts['data_dir'] or None, opts['download'],
                          train_split=opts['train_split'], test_split=opts['test_split'],
                          label_feature=label)


def _channel_stats(train: Split) -> tuple[tuple[float, ...], tuple[float, ...]]:
  """Per-channel mean and std of the training images, never the test images."""
  pixels = train.images.reshape(-1, train.images.shape[-1]).astype(np.float64) / 255.0
  return tuple(pixels.mean(0).tolist()), tuple(np.maximum(pixels.std(0), 1e-3).tolist())


def _digits() -> Loaded:
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
  return Loaded(Split(images[train], labels[train]), Split(images[test], labels[test]), 10,
                tuple(map(str, range(10))))


def _synthetic(cfg: ml_collections.ConfigDict) -> Loaded:
  """Random images whose label is learnable: each class is a noisy copy of its own prototype."""
  rng = np.random.default_rng(cfg.seed)
  shape = (cfg.image_size, cfg.image_size, cfg.channels)
  prototypes = rng.integers(0, 256, size=(cfg.num_classes, *shape))

  def split(n: int) -> Split:
    labels = rng.integers(0, cfg.num_classes, size=n).astype(np.int32)
    noise = rng.normal(0.0, cfg.noise * 255.0, size=(n, *shape))
    return Split(np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8), labels)

  train = split(cfg.num_train)
  return Loaded(train, split(cfg.num_test), cfg.num_classes,
                tuple(map(str, range(cfg.num_classes))))
