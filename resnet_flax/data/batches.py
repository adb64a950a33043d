"""Each training batch, built inside the compiled step from uint8 images, on both data paths.

The data either lives on the device (`DeviceData`: the whole uint8 training split, indexed
here) or comes from the host (`HostBatch`: the step's uint8 batch, already in the epoch's
order). Either way `train_batch` preprocesses and augments it with the one implementation in
augment.py, so the two paths give the same batches.

Determinism: the batch of global step N is a pure function of (seed, N). The epoch's order
is a keyed pseudo-random permutation (`epoch_order`, a Feistel network with cycle walking)
that the host evaluates for a whole epoch and the device at the step's positions only; each
image's draws come from a key folded from (step, its position in the global batch) and the
per-batch draws from (step), so a device that builds only its slice of the global batch
computes exactly that slice of the whole batch.
"""

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from resnet_flax.data import augment
from resnet_flax.data.preprocess import Preprocess

DATA_STREAM = 0xDA7A  # folded into the seed's key: a stream apart from init and dropout
_ORDER, _IMAGE, _BATCH = 0, 1, 2  # streams folded into it: the epoch's order, per image, per batch
_FEISTEL_ROUNDS = 6


@functools.partial(jax.tree_util.register_dataclass, data_fields=['images', 'labels'],
                   meta_fields=[])
@dataclasses.dataclass(frozen=True)
class DeviceData:
  """The uint8 training split on the device (replicated); a pytree (jit argument)."""
  images: jax.Array  # (N, H, W, C) uint8 at the stored size
  labels: jax.Array  # (N,) int32

  def fetch(self, rows: jax.Array, order_key: jax.Array, in_epoch: jax.Array, batch_size: int,
            axis_name: str | None, own: bool) -> tuple[jax.Array, jax.Array]:
    """The examples at global-batch positions `rows` of step `in_epoch` of the epoch."""
    del axis_name, own
    idx = shuffle(order_key, in_epoch * batch_size + rows, self.images.shape[0])
    return jnp.take(self.images, idx, axis=0), jnp.take(self.labels, idx, axis=0)


@functools.partial(jax.tree_util.register_dataclass, data_fields=['images', 'labels'],
                   meta_fields=[])
@dataclasses.dataclass(frozen=True)
class HostBatch:
  """The step's uint8 batch from the host: global under jit, a device's slice under an axis."""
  images: jax.Array
  labels: jax.Array

  def fetch(self, rows: jax.Array, order_key: jax.Array, in_epoch: jax.Array, batch_size: int,
            axis_name: str | None, own: bool) -> tuple[jax.Array, jax.Array]:
    del order_key, in_epoch, batch_size
    if own:  # `rows` are exactly what this device holds
      return self.images, self.labels
    images, labels = self.images, self.labels
    if axis_name:  # partners may sit on other devices
      images, labels = jax.lax.all_gather((images, labels), axis_name, tiled=True)
    return jnp.take(images, rows, axis=0), jnp.take(labels, rows, axis=0)


Source = DeviceData | HostBatch


def data_key(seed: int) -> jax.Array:
  return jax.random.fold_in(jax.random.key(seed), DATA_STREAM)


def order_key(seed: int | jax.Array, epoch: int | jax.Array) -> jax.Array:
  return jax.random.fold_in(jax.random.fold_in(data_key(seed), _ORDER), epoch)


def train_batch(source: Source, opts: augment.Augment, prep: Preprocess, seed: int,
                step: jax.Array, *, batch_size: int, steps_per_epoch: int, num_classes: int,
                shard: tuple[int | jax.Array, int] = (0, 1),
                axis_name: str | None = None) -> dict[str, jax.Array]:
  """Global step `step`'s augmented batch, or shard (i, k) of it: {'image', 'label'[, 'target']}.

  Shard (i, k) is rows i*B/k to (i+1)*B/k of the global batch of B = `batch_size`; `i` may
  be traced (lax.axis_index under `axis_name`). With mixup or cutmix the batch also carries
  'target' (float32 soft labels); each device augments the partners of its rows itself.
  """
  index, count = shard
  if batch_size % count:
    raise ValueError(f'batch {batch_size} does not split into {count} shards')
  local = batch_size // count
  step = jnp.asarray(step, jnp.int32)
  epoch, in_epoch = step // steps_per_epoch, step % steps_per_epoch
  key = data_key(seed)
  image_key = jax.random.fold_in(jax.random.fold_in(key, _IMAGE), step)
  batch_key = jax.random.fold_in(jax.random.fold_in(key, _BATCH), step)
  rows = index * local + jnp.arange(local, dtype=jnp.int32)  # positions in the global batch
  draws = augment.mix_draws(opts, batch_key, batch_size, prep_shape(source, prep)) if opts.mixing \
      else None
  if draws is not None:  # one pass over the rows and their partners
    rows = jnp.concatenate([rows, draws['partner'][rows]])
  images, labels = source.fetch(rows, order_key(seed, epoch), in_epoch, batch_size, axis_name,
                                own=draws is None)
  keys = jax.vmap(jax.random.fold_in, (None, 0))(image_key, rows)
  images = augment.augment_images(prep.to_pixels(images), keys, batch_key, opts, prep.normalize)
  batch = {'label': labels[:local]}
  if draws is not None:
    (images, others), (labels, other_labels) = jnp.split(images, 2), jnp.split(labels, 2)
    images, batch['target'] = augment.mix(images, others, labels, other_labels, draws, num_classes)
  batch['image'] = prep.finish(images)
  return batch


def prep_shape(source: Source, prep: Preprocess) -> tuple[int, int, int]:
  """(H, W, C) that augmentation works on: the input size, before gray is tiled."""
  height, width, channels = source.images.shape[1:]
  return (prep.image_size, prep.image_size, channels) if prep.image_size else (height, width,
                                                                              channels)


def feeding(step_fn: Callable[..., Any], opts: augment.Augment, prep: Preprocess, *, seed: int,
            batch_size: int, steps_per_epoch: int, num_classes: int, num_shards: int,
            sharding: jax.sharding.Sharding) -> Callable[..., Any]:
  """`step_fn(state, batch, rng, axis_name)` as `(state, source, rng, axis_name)`: the batch of
  step `state.step` is built from `source` (DeviceData, or the host's {'image', 'label'}).

  Under a named axis (shard_map, pmap) each device builds its own slice of the global batch;
  under plain jit the global batch is constrained to `sharding` (split over the devices).
  """
  def step(state, source, rng, axis_name=None):
    if isinstance(source, dict):
      source = HostBatch(source['image'], source['label'])
    shard = (jax.lax.axis_index(axis_name), num_shards) if axis_name else (0, 1)
    batch = train_batch(source, opts, prep, seed, state.step, batch_size=batch_size,
                        steps_per_epoch=steps_per_epoch, num_classes=num_classes, shard=shard,
                        axis_name=axis_name)
    if axis_name is None:
      batch = jax.lax.with_sharding_constraint(batch, sharding)
    return step_fn(state, batch, rng, axis_name=axis_name)
  return step


def shuffle(key: jax.Array, positions: jax.Array, n: int) -> jax.Array:
  """The examples at `positions` of a keyed pseudo-random permutation of range(n).

  A balanced Feistel network permutes [0, 4^h) >= n; cycle walking (re-applying it until
  the value falls below n) restricts it to a permutation of [0, n). O(len(positions)) work,
  so the device evaluates only the step's positions.
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


@functools.partial(jax.jit, static_argnames=('n', 'count'))
def _epoch_order(key: jax.Array, n: int, count: int) -> jax.Array:
  return shuffle(key, jnp.arange(count, dtype=jnp.int32), n)


def epoch_order(seed: int, epoch: int, n: int, count: int) -> np.ndarray:
  """The first `count` examples of epoch `epoch`'s order, on the host (the CPU backend)."""
  with jax.default_device(jax.local_devices(backend='cpu')[0]):
    return np.asarray(_epoch_order(order_key(seed, epoch), n, count))
