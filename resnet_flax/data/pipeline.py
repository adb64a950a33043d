"""tf.data pipelines: augmented training batches and padded, masked evaluation batches.

The training order and augmentation of epoch e are a pure function of (seed, e), so a
run resumed at step N sees exactly the batches an uninterrupted run would.
"""

from typing import Iterator

import ml_collections
import numpy as np

from resnet_flax.data.sources import Dataset, Split
from resnet_flax.data.tf_cpu import tensorflow

Batch = dict[str, np.ndarray]


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  """Full batches per epoch; the remainder is dropped (it is reshuffled in next epoch)."""
  return num_examples // batch_size


def input_shape(ds: Dataset, image_size: int) -> tuple[int, int, int]:
  """The (H, W, C) the model sees: the dataset's, or `image_size` square when resizing."""
  height, width, channels = ds.image_shape
  return (image_size, image_size, channels) if image_size else (height, width, channels)


def train_batches(ds: Dataset, aug: ml_collections.ConfigDict, *, batch_size: int, seed: int,
                  epoch: int, start_step: int = 0, image_size: int = 0, process_index: int = 0,
                  process_count: int = 1) -> Iterator[Batch]:
  """Yields epoch `epoch`'s batches from step `start_step` on: {'image': f32 NHWC, 'label': i32}.

  Each image is resized (when `image_size`), padded and cropped, and flipped, then batched
  and normalised. `batch_size` is the global batch; with several processes each yields its
  own contiguous slice of every global batch, augmented exactly as one process would.
  """
  tf = tensorflow()
  n_steps = steps_per_epoch(len(ds.train), batch_size)
  local = _local_batch_size(batch_size, process_count)
  rng = np.random.default_rng([seed, epoch])
  order = rng.permutation(len(ds.train))[:n_steps * batch_size]
  aug_seeds = rng.integers(0, np.iinfo(np.int32).max, size=(len(order), 2), dtype=np.int64)
  mine = _process_rows(n_steps, batch_size, process_index, process_count)[start_step * local:]
  data = tf.data.Dataset.from_tensor_slices(
      (ds.train.images[order[mine]], ds.train.labels[order[mine]], aug_seeds[mine]))
  height, width, channels = input_shape(ds, image_size)

  def augment(image, label, seed):
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    if image_size:
      image = tf.image.resize(image, (height, width))
    if aug.crop_padding:
      p = aug.crop_padding
      image = tf.pad(image, [[p, p], [p, p], [0, 0]])
      image = tf.image.stateless_random_crop(image, (height, width, channels), crop_seed)
    if aug.flip:
      image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    return image, label

  data = data.map(augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  data = data.batch(local, drop_remainder=True)
  data = data.map(_normalizer(ds), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  yield from data.prefetch(tf.data.AUTOTUNE).as_numpy_iterator()


def eval_batches(ds: Dataset, split: Split, batch_size: int, image_size: int = 0,
                 process_index: int = 0, process_count: int = 1) -> Iterator[Batch]:
  """Yields every example of `split` exactly once; the last batch is zero-padded.

  Each batch carries 'mask' (1.0 real, 0.0 padding) so metrics divide by the true count.
  With several processes each yields its slice of every global batch of `batch_size`.
  """
  tf = tensorflow()
  n = len(split)
  n_batches = -(-n // batch_size)
  pad = n_batches * batch_size - n
  mine = _process_rows(n_batches, batch_size, process_index, process_count)
  images = np.concatenate([split.images, np.zeros((pad, *split.images.shape[1:]), np.uint8)])[mine]
  labels = np.concatenate([split.labels, np.zeros((pad,), np.int32)])[mine]
  mask = np.concatenate([np.ones((n,), np.float32), np.zeros((pad,), np.float32)])[mine]
  batch_size = _local_batch_size(batch_size, process_count)
  data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)
  if image_size:
    data = data.map(lambda x, y: (tf.image.resize(x, (image_size, image_size)), y))
  data = data.map(_normalizer(ds), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  masks = tf.data.Dataset.from_tensor_slices(mask).batch(batch_size)
  data = tf.data.Dataset.zip(data, masks).map(lambda b, m: {**b, 'mask': m})
  yield from data.prefetch(tf.data.AUTOTUNE).as_numpy_iterator()


def _local_batch_size(batch_size: int, process_count: int) -> int:
  if batch_size % process_count:
    raise ValueError(f'batch {batch_size} does not split over {process_count} processes')
  return batch_size // process_count


def _process_rows(n_batches: int, batch_size: int, process_index: int,
                  process_count: int) -> np.ndarray:
  """Positions, in batch order, of this process's contiguous slice of each global batch."""
  local = _local_batch_size(batch_size, process_count)
  rows = np.arange(n_batches * batch_size).reshape(n_batches, batch_size)
  return rows[:, process_index * local:(process_index + 1) * local].reshape(-1)


def _normalizer(ds: Dataset):
  tf = tensorflow()
  mean = tf.constant(ds.mean, tf.float32) * 255.0
  std = tf.constant(ds.std, tf.float32) * 255.0

  def normalize(images, labels):
    return {'image': (tf.cast(images, tf.float32) - mean) / std, 'label': labels}

  return normalize
