"""Training augmentation: config.augment's switches, the per-image tf ops and per-batch draws.

Nothing here keeps state. Per-image randomness (crop, flip, cutout) comes from the image's own
stateless seed, drawn with the epoch's order; per-batch randomness (mixup/cutmix weight,
partners and box, a shared cutout square) from numpy generators seeded with (seed, epoch) and
indexed by the global step. So step N's batch is a pure function of (seed, N), and every
process computes the same draws for the global batch it holds a slice of.
"""

import dataclasses

import ml_collections
import numpy as np

from resnet_flax.data.tf_cpu import tensorflow
from resnet_flax.errors import UserError

CROP_MODES = ('zero', 'reflect')
# Extra words of the numpy seed (seed, epoch, stream) of each kind of per-batch draw; the
# epoch's order and per-image seeds use (seed, epoch).
_MIX_STREAM, _CUTOUT_STREAM = 1, 2


@dataclasses.dataclass(frozen=True)
class Augment:
  """config.augment; see configs/default.py for each field."""
  crop_padding: int = 0
  crop_mode: str = 'zero'
  flip: bool = False
  cutout: int = 0
  cutout_per_batch: bool = False
  mixup_alpha: float = 0.0
  cutmix_alpha: float = 0.0
  mix_switch_prob: float = 0.5

  @classmethod
  def from_config(cls, aug: ml_collections.ConfigDict) -> 'Augment':
    """Fields that `aug` lacks (configs saved before they existed) are off."""
    return cls(**{f.name: aug[f.name] for f in dataclasses.fields(cls) if f.name in aug})

  @property
  def mixing(self) -> bool:
    return self.mixup_alpha > 0 or self.cutmix_alpha > 0

  def check(self, shape: tuple[int, int, int]) -> None:
    """Raises UserError for a setting that cannot work on training images of `shape`."""
    height, width, _ = shape
    for key in ('crop_padding', 'cutout', 'mixup_alpha', 'cutmix_alpha'):
      if getattr(self, key) < 0:
        raise UserError(f'--config.augment.{key}={getattr(self, key)} must be 0 (off) or more.')
    if self.crop_mode not in CROP_MODES:
      raise UserError(f'--config.augment.crop_mode={self.crop_mode!r}: use one of '
                      f'{", ".join(map(repr, CROP_MODES))}.')
    if self.crop_mode == 'reflect' and self.crop_padding >= min(height, width):
      raise UserError(f'--config.augment.crop_padding={self.crop_padding} with reflect padding '
                      f'needs to be smaller than the {height}x{width} images (a reflection '
                      "cannot be wider than the image). Pad less, or use crop_mode='zero'.")
    if self.cutout > min(height, width):
      raise UserError(f'--config.augment.cutout={self.cutout} exceeds the {height}x{width} '
                      'training images. Use a smaller square (DeVries & Taylor: 16 on CIFAR-10, '
                      '8 on CIFAR-100), or 0 for none.')
    if not 0 <= self.mix_switch_prob <= 1:
      raise UserError(f'--config.augment.mix_switch_prob={self.mix_switch_prob} is a '
                      'probability: use a value from 0 to 1.')


@dataclasses.dataclass(frozen=True)
class BatchDraws:
  """The per-batch randomness of one epoch, row i for global step i."""
  partner: np.ndarray  # (steps, batch) int64: the batch position each image is mixed with
  lam: np.ndarray  # (steps,) float32: weight of an image's own label (cutmix: its kept area)
  cutmix: np.ndarray  # (steps,) bool: the batch pastes a box (cutmix), else blends (mixup)
  box: np.ndarray  # (steps, 4) int32: cutmix's pasted rows y0:y1 and columns x0:x1
  cutout_center: np.ndarray  # (steps, 2) int32: the shared cutout centre (y, x)


def batch_draws(opts: Augment, seed: int, epoch: int, steps: int, batch_size: int,
                shape: tuple[int, int, int]) -> BatchDraws:
  """Epoch `epoch`'s per-batch draws: one mixing weight and box per batch, as in the papers.

  Mixup (Zhang et al.) blends each image with a random permutation of its batch, lam ~
  Beta(a, a); cutmix (Yun et al.) pastes the partner's box of area about (1 - lam) and sets
  lam to the area actually kept; with both on, a batch uses cutmix with mix_switch_prob.
  """
  height, width, _ = shape
  rng = np.random.default_rng([seed, epoch, _MIX_STREAM])
  partner = rng.permuted(np.tile(np.arange(batch_size), (steps, 1)), axis=1)
  lam = np.ones(steps)
  if opts.mixup_alpha > 0:
    lam = rng.beta(opts.mixup_alpha, opts.mixup_alpha, steps)
  if opts.cutmix_alpha > 0 and opts.mixup_alpha > 0:
    cutmix = rng.random(steps) < opts.mix_switch_prob
  else:
    cutmix = np.full(steps, opts.cutmix_alpha > 0)
  box = np.zeros((steps, 4), np.int64)
  if opts.cutmix_alpha > 0:
    cut = np.sqrt(1.0 - rng.beta(opts.cutmix_alpha, opts.cutmix_alpha, steps))
    half_h, half_w = (height * cut).astype(np.int64) // 2, (width * cut).astype(np.int64) // 2
    cy, cx = rng.integers(0, height, steps), rng.integers(0, width, steps)
    box = np.stack([np.clip(cy - half_h, 0, height), np.clip(cy + half_h, 0, height),
                    np.clip(cx - half_w, 0, width), np.clip(cx + half_w, 0, width)], 1)
    kept = 1.0 - (box[:, 1] - box[:, 0]) * (box[:, 3] - box[:, 2]) / (height * width)
    lam = np.where(cutmix, kept, lam)
    box = np.where(cutmix[:, None], box, 0)
  centers = np.random.default_rng([seed, epoch, _CUTOUT_STREAM]).integers(
      0, (height, width), size=(steps, 2))
  return BatchDraws(partner, lam.astype(np.float32), cutmix, box.astype(np.int32),
                    centers.astype(np.int32))


def image_seeds(seed):
  """(crop, flip, cutout) seeds of one image; the first two are what they were before cutout."""
  return tensorflow().unstack(tensorflow().random.experimental.stateless_split(seed, 3))


def crop_and_flip(image, crop_seed, flip_seed, opts: Augment, shape: tuple[int, int, int]):
  """Pads by crop_padding (zeros or a mirror image), crops `shape` at random, maybe mirrors."""
  tf = tensorflow()
  if opts.crop_padding:
    p = opts.crop_padding
    mode = 'REFLECT' if opts.crop_mode == 'reflect' else 'CONSTANT'
    image = tf.pad(image, [[p, p], [p, p], [0, 0]], mode=mode)
    image = tf.image.stateless_random_crop(image, shape, crop_seed)
  if opts.flip:
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
  return image


def random_center(seed, shape: tuple[int, int, int]):
  """A uniform pixel (y, x) of an image of `shape`: where its own cutout square is centred."""
  tf = tensorflow()
  size = tf.constant(shape[:2], tf.int32)
  u = tf.random.stateless_uniform([2], seed)
  return tf.minimum(tf.cast(u * tf.cast(size, tf.float32), tf.int32), size - 1)


def cutout(image, center, size: int, shape: tuple[int, int, int]):
  """Zeroes the `size` square centred at `center` (clipped at the border; DeVries & Taylor).

  Applied after normalisation, so the square takes the mean colour (the per-pixel mean under
  'per_pixel_mean').
  """
  tf = tensorflow()
  y0, x0 = center[0] - size // 2, center[1] - size // 2
  inside = _box_mask(shape, y0, y0 + size, x0, x0 + size)
  return tf.where(inside[..., None], tf.zeros_like(image), image)


def mix(image, other, lam, is_cutmix, box, shape: tuple[int, int, int]):
  """Cutmix pastes `other`'s box into `image`; mixup blends lam * image + (1 - lam) * other."""
  tf = tensorflow()
  pasted = tf.where(_box_mask(shape, box[0], box[1], box[2], box[3])[..., None], other, image)
  return tf.where(is_cutmix, pasted, lam * image + (1.0 - lam) * other)


def _box_mask(shape: tuple[int, int, int], y0, y1, x0, x1):
  tf = tensorflow()
  ys, xs = tf.range(shape[0])[:, None], tf.range(shape[1])[None, :]
  return (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)
