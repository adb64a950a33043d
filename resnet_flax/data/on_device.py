"""Training data on the device: the uint8 set placed once, each batch built inside the step.

`put_on_device` copies the training images and labels to every device once;
`train_batch(data, opts, key, step, ...)` is a pure, jittable function that draws step
`step`'s examples and augments them (crop, flip, cutout, mixup/cutmix, normalisation,
resize, grayscale to RGB) as augment.Augment says, so the step needs no host-to-device copy.

Determinism: the batch is a pure function of (key, step). The epoch's order is a keyed
pseudo-random permutation evaluated only at the step's positions (a Feistel network with
cycle walking: O(batch) work; jax.random.permutation of 50k examples costs 25 ms per step on
a 2-core CPU, about 5% of a ResNet-20 step). Each example's crop, flip and cutout come from
a key folded from (step, its position in the global batch), and the per-batch draws (mixing
weight, partners and box, a shared cutout square) from (step), so a device that builds only
its slice of the global batch (`shard`) computes exactly that slice of the whole batch.
The random streams differ from the host tf.data pipeline's (pipeline.py): the same seed
gives other, equally distributed, orders and augmentations there.
"""

import dataclasses
import functools
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from resnet_flax.data import augment
from resnet_flax.data.dataset import Dataset, input_shape
from resnet_flax.errors import UserError

# Streams folded into the key: the epoch's order, per-image draws, per-batch draws.
_ORDER, _IMAGE, _BATCH = 0, 1, 2
_FEISTEL_ROUNDS = 6
# fits_on_device: the share of a device's free memory (host RAM for CPU devices) that the
# uint8 copies may take; the rest is left for the model, activations and the host pipeline.
FIT_FRACTION = 0.25


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=['images', 'labels', 'mean', 'std'],
                   meta_fields=['num_classes', 'image_size', 'tile_gray'])
@dataclasses.dataclass(frozen=True)
class DeviceData:
  """The training split on the device and what preprocessing needs; a pytree (jit argument)."""
  images: jax.Array  # (N, H, W, C) uint8 at the stored size
  labels: jax.Array  # (N,) int32
  mean: jax.Array  # float32, 0..255 units: (C,), or (H', W', C) per pixel at the input size
  std: jax.Array  # (C,) float32, 0..255 units
  num_classes: int
  image_size: int  # resize to this square first (0: the stored size)
  tile_gray: bool  # 1-channel images tiled to RGB (last: every step before is per channel)

  @property
  def num_examples(self) -> int:
    return self.images.shape[0]

  @property
  def shape(self) -> tuple[int, int, int]:
    """(H, W, C) of the images before tiling: what crop, cutout and mixing work on."""
    height, width, channels = self.images.shape[1:]
    if self.image_size:
      return (self.image_size, self.image_size, channels)
    return (height, width, channels)


def put_on_device(ds: Dataset, sharding: jax.sharding.Sharding,
                  image_size: int = 0) -> DeviceData:
  """Copies `ds.train` (uint8) to the devices of a replicated `sharding`, once.

  Every device holds the whole split (CIFAR-10: 150 MB); with several processes each passes
  the same data. The normalisation constants are computed here exactly as pipeline.py
  computes them, so un-augmented batches equal its evaluation preprocessing.
  """
  if not sharding.is_fully_replicated:
    raise ValueError(f'the training data is replicated; got {sharding}')
  shape = input_shape(ds, image_size)
  std = np.asarray(ds.std, np.float32) * np.float32(255.0)
  if ds.pixel_mean is None:
    mean = np.asarray(ds.mean, np.float32) * np.float32(255.0)
  else:
    mean = np.asarray(ds.pixel_mean, np.float32) * np.float32(255.0)
    if mean.shape[:2] != shape[:2]:  # bilinear resizing is linear: the mean of the resized images
      mean = np.asarray(_resize(jnp.asarray(mean), shape[:2]))

  def put(x):
    x = np.asarray(x)
    return jax.make_array_from_process_local_data(sharding, x, x.shape)

  return DeviceData(put(ds.train.images), put(ds.train.labels.astype(np.int32)), put(mean),
                    put(std), ds.num_classes, image_size,
                    bool(ds.grayscale_to_rgb and ds.image_shape[-1] == 1))


def fits_on_device(ds: Dataset, devices: Sequence[jax.Device]) -> bool:
  """Whether the uint8 training split should go on `devices` (config 'auto').

  Each device holds a copy of the images and labels. Accelerators: the copy must take at
  most FIT_FRACTION of every device's free memory (memory_stats' bytes_limit - bytes_in_use).
  CPU devices share the host's RAM: all their copies must take at most FIT_FRACTION of the
  available RAM (MemAvailable). Without memory figures the answer is False (host pipeline).
  """
  need = ds.train.images.nbytes + ds.train.labels.nbytes
  cpus = [d for d in devices if d.platform == 'cpu']
  if cpus:
    available = _available_host_ram()
    if available is None or len(cpus) * need > FIT_FRACTION * available:
      return False
  for device in devices:
    if device.platform == 'cpu':
      continue
    stats = device.memory_stats() or {}
    if 'bytes_limit' not in stats:
      return False
    if need > FIT_FRACTION * (stats['bytes_limit'] - stats.get('bytes_in_use', 0)):
      return False
  return True


def _available_host_ram() -> int | None:
  try:
    with open('/proc/meminfo') as f:
      for line in f:
        if line.startswith('MemAvailable:'):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  try:
    return os.sysconf('SC_AVPHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
  except (ValueError, OSError, AttributeError):
    return None


def train_batch(data: DeviceData, opts: augment.Augment, key: jax.Array, step: jax.Array, *,
                batch_size: int, steps_per_epoch: int,
                shard: tuple[int | jax.Array, int] = (0, 1)) -> dict[str, jax.Array]:
  """Global step `step`'s augmented batch, or shard (i, k) of it: {'image', 'label'[, 'target']}.

  `batch_size` is the global batch; shard (i, k) is rows i*B/k to (i+1)*B/k of it, exactly
  as the unsharded batch has them. `i` may be traced (lax.axis_index under shard_map/pmap);
  `k`, `batch_size` and `steps_per_epoch` are static. An epoch visits steps_per_epoch *
  batch_size distinct examples. With mixup or cutmix the batch also carries 'target'
  (float32 soft labels, as pipeline.train_batches), and each device augments the partners
  of its rows itself.
  """
  index, count = shard
  if batch_size % count:
    raise ValueError(f'batch {batch_size} does not split into {count} shards')
  opts.check(data.shape)
  local = batch_size // count
  step = jnp.asarray(step, jnp.int32)
  epoch, in_epoch = step // steps_per_epoch, step % steps_per_epoch
  rows = index * local + jnp.arange(local, dtype=jnp.int32)  # positions in the global batch
  order_key = jax.random.fold_in(jax.random.fold_in(key, _ORDER), epoch)
  image_key = jax.random.fold_in(jax.random.fold_in(key, _IMAGE), step)
  draws = _batch_draws(opts, jax.random.fold_in(jax.random.fold_in(key, _BATCH), step),
                       batch_size, data.shape)

  if opts.mixing:  # each device augments its rows' partners too: one pass over both
    rows = jnp.concatenate([rows, draws['partner'][rows]])
  idx = _shuffle(order_key, in_epoch * batch_size + rows, data.num_examples)
  keys = jax.vmap(jax.random.fold_in, (None, 0))(image_key, rows)
  images = _augment(data, opts, jnp.take(data.images, idx, axis=0), keys, draws['center'])
  labels = jnp.take(data.labels, idx, axis=0)
  batch = {'label': labels[:local]}
  if opts.mixing:
    (images, others), (labels, other_labels) = jnp.split(images, 2), jnp.split(labels, 2)
    lam = draws['lam']
    # Each pixel's own weight: lam (mixup), or 0 inside the pasted box and 1 outside (cutmix).
    weight = jnp.where(draws['cutmix'], jnp.where(draws['box_mask'], 0.0, 1.0), lam)[:, :, None]
    images = weight * images + (1.0 - weight) * others
    batch['target'] = (lam * jax.nn.one_hot(labels, data.num_classes)
                       + (1.0 - lam) * jax.nn.one_hot(other_labels, data.num_classes))
  if data.tile_gray:
    images = jnp.repeat(images, 3, axis=-1)
  batch['image'] = images
  return batch


def _shuffle(key: jax.Array, positions: jax.Array, n: int) -> jax.Array:
  """The examples at `positions` of a keyed pseudo-random permutation of range(n).

  A balanced Feistel network permutes [0, 4^h) >= n; cycle walking (re-applying it until
  the value falls below n) restricts it to a permutation of [0, n).
  """
  half = max(1, ((n - 1).bit_length() + 1) // 2)
  mask = jnp.uint32((1 << half) - 1)
  round_keys = [jax.random.fold_in(key, r) for r in range(_FEISTEL_ROUNDS)]

  def permute(x):
    left, right = x >> half, x & mask
    for round_key in round_keys:  # round function: a threefry hash of `right` under the round key
      f = jax.random.key_data(jax.vmap(jax.random.fold_in, (None, 0))(round_key, right))[:, 0]
      left, right = right, (left ^ f) & mask
    return (left << half) | right

  def walk(state):  # one body holds the network: it compiles once
    y, again = state
    y = jnp.where(again, permute(y), y)
    return y, y >= n

  # The flag comes from `positions` so that it varies across devices like them (shard_map).
  out, _ = jax.lax.while_loop(lambda state: jnp.any(state[1]), walk,
                              (positions.astype(jnp.uint32), positions >= 0))
  return out.astype(jnp.int32)


def _batch_draws(opts: augment.Augment, key: jax.Array, batch_size: int,
                 shape: tuple[int, int, int]) -> dict[str, jax.Array]:
  """One batch's shared draws, as augment.batch_draws makes them for the host pipeline."""
  height, width, _ = shape
  k_partner, k_lam, k_switch, k_cy, k_cx, k_center = jax.random.split(key, 6)
  draws = {'center': None}
  if opts.cutout and opts.cutout_per_batch:
    draws['center'] = jax.random.randint(k_center, (2,), 0, jnp.array([height, width]))
  if not opts.mixing:
    return draws
  if opts.cutmix_alpha > 0 and opts.mixup_alpha > 0:
    cutmix = jax.random.uniform(k_switch) < opts.mix_switch_prob
  else:
    cutmix = jnp.bool_(opts.cutmix_alpha > 0)
  # One Beta(alpha, alpha) draw, mixup's weight or the area cutmix keeps, as G1 / (G1 + G2)
  # of two Gamma(alpha) draws in one call (jax.random.beta makes two: ~40% more compile time).
  alpha = jnp.where(cutmix, opts.cutmix_alpha, opts.mixup_alpha)
  log_gammas = jax.random.loggamma(k_lam, jnp.full((2,), alpha, jnp.float32))
  lam = jax.nn.sigmoid(log_gammas[0] - log_gammas[1])
  box_mask = jnp.zeros((height, width), bool)
  if opts.cutmix_alpha > 0:
    cut = jnp.sqrt(1.0 - lam)
    half_h = jnp.floor(height * cut).astype(jnp.int32) // 2
    half_w = jnp.floor(width * cut).astype(jnp.int32) // 2
    cy, cx = jax.random.randint(k_cy, (), 0, height), jax.random.randint(k_cx, (), 0, width)
    y0, y1 = jnp.clip(cy - half_h, 0, height), jnp.clip(cy + half_h, 0, height)
    x0, x1 = jnp.clip(cx - half_w, 0, width), jnp.clip(cx + half_w, 0, width)
    kept = 1.0 - (y1 - y0) * (x1 - x0) / (height * width)
    lam = jnp.where(cutmix, kept.astype(jnp.float32), lam)
    box_mask = cutmix & _box_mask(shape, y0, y1, x0, x1)
  draws.update(partner=jax.random.permutation(k_partner, batch_size), lam=lam.astype(jnp.float32),
               cutmix=cutmix, box_mask=box_mask)
  return draws


def _augment(data: DeviceData, opts: augment.Augment, images: jax.Array, keys: jax.Array,
             shared_center: jax.Array | None) -> jax.Array:
  """uint8 (b, H, W, C) -> resized, cropped, flipped, normalised, cut out float32 images."""
  height, width, _ = shape = data.shape
  images = images.astype(jnp.float32)
  if data.image_size:
    images = _resize(images, shape[:2])
  if opts.crop_padding or opts.flip:
    images = _crop_and_flip(images, opts, keys)
  images = (images - data.mean) / data.std
  if opts.cutout:
    if shared_center is None:
      centers = jax.vmap(lambda k: jax.random.randint(
          jax.random.fold_in(k, 2), (2,), 0, jnp.array([height, width])))(keys)
    else:
      centers = jnp.broadcast_to(shared_center, (len(keys), 2))
    y0, x0 = centers[:, 0] - opts.cutout // 2, centers[:, 1] - opts.cutout // 2
    inside = jax.vmap(lambda a, b: _box_mask(shape, a, a + opts.cutout, b, b + opts.cutout))(y0, x0)
    images = jnp.where(inside[..., None], 0.0, images)
  return images


def _crop_and_flip(images: jax.Array, opts: augment.Augment, keys: jax.Array) -> jax.Array:
  """Pads by crop_padding (zeros, or numpy/tf 'reflect'), crops back at random, maybe mirrors.

  The crop is a batched dynamic_slice (a gather with one start per image): an index per
  pixel would make XLA build an index array several times the batch's size.
  """
  _, height, width, channels = images.shape
  p = opts.crop_padding
  if p:
    mode = 'reflect' if opts.crop_mode == 'reflect' else 'constant'
    padded = jnp.pad(images, ((0, 0), (p, p), (p, p), (0, 0)), mode=mode)
    offsets = jax.vmap(lambda k: jax.random.randint(jax.random.fold_in(k, 0), (2,), 0,
                                                    2 * p + 1))(keys)
    images = jax.vmap(lambda image, o: jax.lax.dynamic_slice(
        image, (o[0], o[1], 0), (height, width, channels)))(padded, offsets)
  if opts.flip:
    flip = jax.vmap(lambda k: jax.random.bernoulli(jax.random.fold_in(k, 1)))(keys)
    images = jnp.where(flip[:, None, None, None], images[:, :, ::-1], images)
  return images


def _resize(images: jax.Array, size: tuple[int, int]) -> jax.Array:
  """Bilinear, half-pixel centres, no antialiasing: tf.image.resize's default."""
  shape = (*images.shape[:-3], *size, images.shape[-1])
  return jax.image.resize(images, shape, 'bilinear', antialias=False)


def _box_mask(shape: tuple[int, int, int], y0, y1, x0, x1) -> jax.Array:
  ys, xs = jnp.arange(shape[0])[:, None], jnp.arange(shape[1])[None, :]
  return (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)


DATA_STREAM = 0xDA7A  # folded into the seed's key: a stream apart from init and dropout


def feeding(step_fn: Callable[..., Any], opts: augment.Augment, *, seed: int, batch_size: int,
            steps_per_epoch: int, num_shards: int,
            sharding: jax.sharding.Sharding) -> Callable[..., Any]:
  """`step_fn(state, batch, rng, axis_name)` as `(state, data, rng, axis_name)`: the batch of
  step `state.step` is built from `data` inside the compiled step.

  Under a named axis (shard_map, pmap) each device builds its own slice of the global batch;
  under plain jit the global batch is constrained to `sharding` (split over the devices).
  """
  def step(state, data: DeviceData, rng, axis_name=None):
    key = jax.random.fold_in(jax.random.key(seed), DATA_STREAM)
    shard = (jax.lax.axis_index(axis_name), num_shards) if axis_name else (0, 1)
    batch = train_batch(data, opts, key, state.step, batch_size=batch_size,
                        steps_per_epoch=steps_per_epoch, shard=shard)
    if axis_name is None:
      batch = jax.lax.with_sharding_constraint(batch, sharding)
    return step_fn(state, batch, rng, axis_name=axis_name)
  return step


ON_DEVICE_SETTINGS = ('auto', 'on', 'off')


def wanted(setting: str, ds: Dataset, devices: Sequence[jax.Device]) -> bool:
  """Resolves config.data.on_device: 'auto' places the data when it fits (fits_on_device)."""
  if setting not in ON_DEVICE_SETTINGS:
    raise UserError(f'--config.data.on_device={setting!r}: use one of '
                    f'{", ".join(map(repr, ON_DEVICE_SETTINGS))}.')
  return setting == 'on' or (setting == 'auto' and fits_on_device(ds, devices))
