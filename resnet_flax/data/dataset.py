"""What every source produces: in-memory uint8 NHWC splits, and the input shape the model sees.

CIFAR-scale data fits in host memory, which makes the training order a pure function of
(seed, epoch).
"""

import dataclasses
from typing import NamedTuple

import numpy as np

from resnet_flax.errors import UserError


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
  validation: Split | None = None  # carved from the training split (config.data.validation_size)
  pixel_mean: np.ndarray | None = None  # (H, W, C) float32 in [0, 1] units: subtracted instead of
  #   `mean` by the pipelines ('per_pixel_mean' normalisation); the native size, resized with the images
  grayscale_to_rgb: bool = False  # the pipelines tile 1-channel images to 3 channels

  @property
  def image_shape(self) -> tuple[int, int, int]:
    """The stored images' (H, W, C); `input_shape` gives what the model sees."""
    return tuple(self.train.images.shape[1:])


class Loaded(NamedTuple):
  """What a source reads, before a validation split is carved and statistics are computed."""
  train: Split
  test: Split
  num_classes: int
  label_names: tuple[str, ...]


def input_shape(ds: Dataset, image_size: int) -> tuple[int, int, int]:
  """The (H, W, C) the model sees: resized to `image_size` square if set, grayscale maybe tiled."""
  height, width, channels = ds.image_shape
  if ds.grayscale_to_rgb and channels == 1:
    channels = 3
  return (image_size, image_size, channels) if image_size else (height, width, channels)


def check_image_shape(shape: tuple[int, int, int], min_size: int = 1,
                      channels: int | None = None) -> None:
  """Raises UserError unless `shape` (H, W, C) is at least `min_size` square with `channels`.

  `min_size` is what the network's downsampling needs (e.g. 32 for a stride-32 ImageNet stem);
  `channels`, when given, is the channel count the model's weights expect.
  """
  height, width, depth = shape
  if min(height, width, depth) < 1:
    raise UserError(f'The input shape {height}x{width}x{depth} has an empty dimension. Set '
                    '--config.data.image_size to a positive size (or 0 for the native size).')
  if min(height, width) < min_size:
    raise UserError(f'The {height}x{width} input images are smaller than the {min_size}x'
                    f'{min_size} that this network\'s downsampling needs. Upscale them with '
                    f'--config.data.image_size={min_size} (or larger), or pick a model with '
                    'less downsampling (a CIFAR stem).')
  if channels is not None and depth != channels:
    fix = ('--config.data.grayscale_to_rgb=True tiles the gray channel to RGB.'
           if depth == 1 and channels == 3 else
           'Use a dataset or model with matching channels.')
    raise UserError(f'The input images have {depth} channel(s) but the model expects '
                    f'{channels}. {fix}')
