"""Training augmentation, written once in JAX and applied inside the compiled step.

To add one: write `op(images, keys, batch_key, opts) -> images` below, register it with
`@augmentation(stream=<an unused number>, normalized=...)`, and add its config field to
`Augment` and configs/default.py. Both data paths (on the device and from the host) build
their batches through `augment_images`, so the new op applies to both.

An op sees a float32 batch (b, H, W, C) in pixel units 0..255 (`normalized=False`, before
the mean is subtracted) or normalised (`normalized=True`, after); `keys` holds one key per
image (its own stream), `batch_key` one per global batch. Ops run in registration order.
Mixup and cutmix combine two augmented images; `mix_draws` and `mix` do that per batch.
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections

from resnet_flax.data import policies
from resnet_flax.errors import UserError

CROP_MODES = ('zero', 'reflect')


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
  policy: str = 'none'
  randaugment_n: int = 2
  randaugment_m: int = 9

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
    if self.policy not in policies.POLICIES:
      raise UserError(f'--config.augment.policy={self.policy!r}: use one of '
                      f'{", ".join(map(repr, policies.POLICIES))}.')
    if self.randaugment_n < 1 or not 0 <= self.randaugment_m < policies.NUM_BINS:
      raise UserError(f'--config.augment.randaugment_n={self.randaugment_n} and randaugment_m='
                      f'{self.randaugment_m}: n must be at least 1 and m from 0 to '
                      f'{policies.NUM_BINS - 1}.')
    if not 0 <= self.mix_switch_prob <= 1:
      raise UserError(f'--config.augment.mix_switch_prob={self.mix_switch_prob} is a '
                      'probability: use a value from 0 to 1.')


Op = Callable[[jax.Array, jax.Array, jax.Array, Augment], jax.Array]


@dataclasses.dataclass(frozen=True)
class Registered:
  name: str
  op: Op
  stream: int  # folded into each image's key: the op's own random stream
  normalized: bool  # runs after normalisation (else on 0..255 pixels)


OPS: list[Registered] = []


def augmentation(stream: int, normalized: bool = False) -> Callable[[Op], Op]:
  """Registers an op (see the module docstring); `stream` must be new, as it sets the draws."""
  def register(op: Op) -> Op:
    if any(r.stream == stream for r in OPS):
      raise ValueError(f'augmentation stream {stream} is taken')
    OPS.append(Registered(op.__name__, op, stream, normalized))
    return op
  return register


def augment_images(images: jax.Array, keys: jax.Array, batch_key: jax.Array, opts: Augment,
                   normalize: Callable[[jax.Array], jax.Array]) -> jax.Array:
  """Every registered op in order around `normalize`: pixels (b, H, W, C) -> model inputs."""
  for normalized in (False, True):
    for r in OPS:
      if r.normalized == normalized:
        images = r.op(images, jax.vmap(jax.random.fold_in, (0, None))(keys, r.stream), batch_key,
                      opts)
    if not normalized:
      images = normalize(images)
  return images


@augmentation(stream=0)
def crop(images: jax.Array, keys: jax.Array, batch_key: jax.Array, opts: Augment) -> jax.Array:
  """Pads by crop_padding (zeros, or numpy/tf 'reflect'), crops back at a random offset.

  A batched dynamic_slice (a gather with one start per image): an index per pixel would
  make XLA build an index array several times the batch's size.
  """
  del batch_key
  if not opts.crop_padding:
    return images
  _, height, width, channels = images.shape
  p = opts.crop_padding
  mode = 'reflect' if opts.crop_mode == 'reflect' else 'constant'
  padded = jnp.pad(images, ((0, 0), (p, p), (p, p), (0, 0)), mode=mode)
  offsets = jax.vmap(lambda k: jax.random.randint(k, (2,), 0, 2 * p + 1))(keys)
  return jax.vmap(lambda image, o: jax.lax.dynamic_slice(
      image, (o[0], o[1], 0), (height, width, channels)))(padded, offsets)


@augmentation(stream=1)
def flip(images: jax.Array, keys: jax.Array, batch_key: jax.Array, opts: Augment) -> jax.Array:
  """Mirrors each image left-right with probability 1/2."""
  del batch_key
  if not opts.flip:
    return images
  flipped = jax.vmap(jax.random.bernoulli)(keys)
  return jnp.where(flipped[:, None, None, None], images[:, :, ::-1], images)


# Registered after crop and flip, and cutout runs after normalisation: torchvision's CIFAR
# recipes apply RandomCrop, RandomHorizontalFlip, then the policy on uint8, then Normalize
# and cutout.
@augmentation(stream=3)
def policy(images: jax.Array, keys: jax.Array, batch_key: jax.Array, opts: Augment) -> jax.Array:
  """AutoAugment (CIFAR-10 policy), RandAugment (n, m) or TrivialAugmentWide on each image,
  as torchvision's classes sample and apply them (data/policies.py)."""
  del batch_key
  return policies.apply(opts.policy, images, keys, opts.randaugment_n, opts.randaugment_m)


@augmentation(stream=2, normalized=True)
def cutout(images: jax.Array, keys: jax.Array, batch_key: jax.Array, opts: Augment) -> jax.Array:
  """Zeroes a cutout-sized square centred on a uniform pixel, clipped at the border (DeVries &
  Taylor); after normalisation, so it takes the mean colour. cutout_per_batch: one centre a
  batch, as the SAM code draws it."""
  if not opts.cutout:
    return images
  shape = images.shape[1:]
  size = jnp.array(shape[:2])
  if opts.cutout_per_batch:
    centers = jnp.broadcast_to(jax.random.randint(_batch_stream(batch_key, 'center'), (2,), 0, size),
                               (len(keys), 2))
  else:
    centers = jax.vmap(lambda k: jax.random.randint(k, (2,), 0, size))(keys)
  y0, x0 = centers[:, 0] - opts.cutout // 2, centers[:, 1] - opts.cutout // 2
  inside = jax.vmap(lambda a, b: box_mask(shape, a, a + opts.cutout, b, b + opts.cutout))(y0, x0)
  return jnp.where(inside[..., None], 0.0, images)


_BATCH_STREAMS = ('partner', 'lam', 'switch', 'cy', 'cx', 'center')


def _batch_stream(batch_key: jax.Array, name: str) -> jax.Array:
  return jax.random.split(batch_key, len(_BATCH_STREAMS))[_BATCH_STREAMS.index(name)]


def mix_draws(opts: Augment, batch_key: jax.Array, batch_size: int,
              shape: tuple[int, int, int]) -> dict[str, jax.Array]:
  """One batch's mixing draws: partners (a permutation), lam, mixup-or-cutmix, the box.

  Mixup (Zhang et al.) blends each image with a permuted partner, lam ~ Beta(a, a); cutmix
  (Yun et al.) pastes the partner's box of area about (1 - lam) and sets lam to the area
  actually kept; with both on, a batch uses cutmix with probability mix_switch_prob.
  """
  height, width, _ = shape
  if opts.cutmix_alpha > 0 and opts.mixup_alpha > 0:
    cutmix = jax.random.uniform(_batch_stream(batch_key, 'switch')) < opts.mix_switch_prob
  else:
    cutmix = jnp.bool_(opts.cutmix_alpha > 0)
  # One Beta(alpha, alpha) draw as G1 / (G1 + G2) of two Gamma(alpha) draws in one call
  # (jax.random.beta makes two calls, which compiles slower).
  alpha = jnp.where(cutmix, opts.cutmix_alpha, opts.mixup_alpha)
  log_gammas = jax.random.loggamma(_batch_stream(batch_key, 'lam'),
                                   jnp.full((2,), alpha, jnp.float32))
  lam = jax.nn.sigmoid(log_gammas[0] - log_gammas[1])
  in_box = jnp.zeros((height, width), bool)
  if opts.cutmix_alpha > 0:
    cut = jnp.sqrt(1.0 - lam)
    half_h = jnp.floor(height * cut).astype(jnp.int32) // 2
    half_w = jnp.floor(width * cut).astype(jnp.int32) // 2
    cy = jax.random.randint(_batch_stream(batch_key, 'cy'), (), 0, height)
    cx = jax.random.randint(_batch_stream(batch_key, 'cx'), (), 0, width)
    y0, y1 = jnp.clip(cy - half_h, 0, height), jnp.clip(cy + half_h, 0, height)
    x0, x1 = jnp.clip(cx - half_w, 0, width), jnp.clip(cx + half_w, 0, width)
    kept = 1.0 - (y1 - y0) * (x1 - x0) / (height * width)
    lam = jnp.where(cutmix, kept.astype(jnp.float32), lam)
    in_box = cutmix & box_mask(shape, y0, y1, x0, x1)
  return {'partner': jax.random.permutation(_batch_stream(batch_key, 'partner'), batch_size),
          'lam': lam.astype(jnp.float32), 'cutmix': cutmix, 'in_box': in_box}


def mix(images: jax.Array, others: jax.Array, labels: jax.Array, other_labels: jax.Array,
        draws: dict[str, jax.Array], num_classes: int) -> tuple[jax.Array, jax.Array]:
  """(mixed images, soft targets): cutmix pastes the partner's box, mixup blends; the targets
  weigh the two labels by lam."""
  lam = draws['lam']
  # Each pixel's own weight: lam (mixup), or 0 inside the pasted box and 1 outside (cutmix).
  weight = jnp.where(draws['cutmix'], jnp.where(draws['in_box'], 0.0, 1.0), lam)[:, :, None]
  mixed = weight * images + (1.0 - weight) * others
  targets = (lam * jax.nn.one_hot(labels, num_classes)
             + (1.0 - lam) * jax.nn.one_hot(other_labels, num_classes))
  return mixed, targets


def box_mask(shape: tuple[int, ...], y0, y1, x0, x1) -> jax.Array:
  """(H, W) booleans: rows y0:y1 and columns x0:x1 of an image of `shape`."""
  ys, xs = jnp.arange(shape[0])[:, None], jnp.arange(shape[1])[None, :]
  return (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)
