"""uint8 images -> model inputs, in JAX inside the compiled steps: resize, normalise, gray to RGB.

Training and evaluation use the same `Preprocess` (training augments between `to_pixels` and
`finish`), so a batch without augmentation equals the evaluation input bit for bit.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
from typing import Any

import numpy as np

from resnet_flax.data.dataset import Dataset, input_shape


@functools.partial(jax.tree_util.register_dataclass, data_fields=['mean', 'std'],
                   meta_fields=['image_size', 'tile_gray'])
@dataclasses.dataclass(frozen=True)
class Preprocess:
  """What preprocessing needs of the dataset; a pytree (a jit argument or a closed-over constant)."""
  mean: jax.Array | np.ndarray  # float32, 0..255 units: (C,), or (H', W', C) per pixel at input size
  std: jax.Array | np.ndarray  # (C,) float32, 0..255 units
  image_size: int  # resize to this square first (0: the stored size)
  tile_gray: bool  # 1-channel images tiled to RGB (last: every step before is per channel)

  @classmethod
  def from_dataset(cls, ds: Dataset, image_size: int = 0) -> 'Preprocess':
    mean = normalization_mean(ds, input_shape(ds, image_size)) * np.float32(255.0)
    std = np.asarray(ds.std, np.float32) * np.float32(255.0)
    return cls(mean, std, image_size, bool(ds.grayscale_to_rgb and ds.image_shape[-1] == 1))

  def to_pixels(self, images: jax.Array) -> jax.Array:
    """uint8 (b, H, W, C) -> float32 0..255 at the input size (before any augmentation)."""
    images = images.astype(jnp.float32)
    if self.image_size:
      images = resize(images, (self.image_size, self.image_size))
    return images

  def normalize(self, images: jax.Array) -> jax.Array:
    return (images - self.mean) / self.std

  def finish(self, images: jax.Array) -> jax.Array:
    """The model's channels: gray tiled to RGB when asked (last, as it changes nothing else)."""
    return jnp.repeat(images, 3, axis=-1) if self.tile_gray else images

  def __call__(self, images: jax.Array) -> jax.Array:
    """Evaluation's whole preprocessing: uint8 images -> model inputs."""
    return self.finish(self.normalize(self.to_pixels(images)))


def resize(images: jax.Array, size: tuple[int, int]) -> jax.Array:
  """Bilinear, half-pixel centres, no antialiasing: tf.image.resize's default."""
  shape = (*images.shape[:-3], *size, images.shape[-1])
  return jax.image.resize(images, shape, 'bilinear', antialias=False)


def normalization_mean(ds: Dataset, shape: tuple[int, int, int]) -> np.ndarray:
  """The mean that inputs of `shape` lose, in [0, 1] units: per channel (C,), or the
  per-pixel mean image resized to `shape` (H, W, C) (bilinear resizing is linear, so the
  resized mean is the mean of the resized images)."""
  if ds.pixel_mean is None:
    return np.asarray(ds.mean, np.float32)
  mean = np.asarray(ds.pixel_mean, np.float32)
  if mean.shape[:2] == tuple(shape[:2]):
    return mean
  return np.asarray(resize(jnp.asarray(mean), tuple(shape[:2])))


def data_record(dataset: Dataset, image_shape: tuple[int, ...]) -> dict[str, Any]:
  """What evaluation and prediction need to know of the data without loading it.

  'mean' is per channel, or the per-pixel mean image at the input size (He et al.'s
  normalisation): prediction subtracts whichever it finds.
  """
  return {'name': dataset.name, 'image_shape': list(image_shape),
          'num_classes': dataset.num_classes,
          'mean': normalization_mean(dataset, image_shape).tolist(),
          'std': list(dataset.std), 'label_names': list(dataset.label_names)}
