"""tf.data pipelines: augmented training batches and padded, masked evaluation batches.

The training order and augmentation of epoch e are a pure function of (seed, e), so a
run resumed at step N sees exactly the batches an uninterrupted run would. Training and
evaluation images both go through the dataset's preprocessing (grayscale to RGB, resize,
normalisation); only training images are augmented.
"""

from collections.abc import Iterator

import ml_collections
import numpy as np

from resnet_flax.data import augment
from resnet_flax.data.dataset import Dataset, Split, input_shape
from resnet_flax.data.tf_cpu import tensorflow

__all__ = ['Batch', 'eval_batches', 'input_shape', 'normalization_mean', 'steps_per_epoch',
           'train_batches']

Batch = dict[str, np.ndarray]


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  """Full batches per epoch; the remainder is dropped (it is reshuffled in next epoch)."""
  return num_examples // batch_size


def train_batches(ds: Dataset, aug: ml_collections.ConfigDict, *, batch_size: int, seed: int,
                  epoch: int, start_step: int = 0, image_size: int = 0, process_index: int = 0,
                  process_count: int = 1) -> Iterator[Batch]:
  """Yields epoch `epoch`'s batches from step `start_step` on: {'image': f32 NHWC, 'label': i32}.

  Each image is preprocessed, padded and cropped, flipped, normalised and cut out as `aug`
  says. With mixup or cutmix on, batches also carry 'target' (f32, (batch, classes)): the
  soft labels, while 'label' stays each image's own. `batch_size` is the global batch; with
  several processes each yields its own contiguous slice of every global batch, augmented
  exactly as one process would (per-batch draws follow the global step).
  """
  tf = tensorflow()
  opts = augment.Augment.from_config(aug)
  shape = input_shape(ds, image_size)
  opts.check(shape)
  n_steps = steps_per_epoch(len(ds.train), batch_size)
  local = _local_batch_size(batch_size, process_count)
  rng = np.random.default_rng([seed, epoch])
  order = rng.permutation(len(ds.train))[:n_steps * batch_size]
  aug_seeds = rng.integers(0, np.iinfo(np.int32).max, size=(len(order), 2), dtype=np.int64)
  mine = _process_rows(n_steps, batch_size, process_index, process_count)[start_step * local:]
  rows = {'image': ds.train.images[order[mine]], 'label': ds.train.labels[order[mine]],
          'seed': aug_seeds[mine]}
  draws = augment.batch_draws(opts, seed, epoch, n_steps, batch_size, shape)
  step = mine // batch_size
  if opts.cutout and opts.cutout_per_batch:
    rows['cutout_center'] = draws.cutout_center[step]
  if opts.mixing:
    partner = step * batch_size + draws.partner[step, mine % batch_size]
    rows.update(partner_image=ds.train.images[order[partner]],
                partner_label=ds.train.labels[order[partner]], partner_seed=aug_seeds[partner],
                lam=draws.lam[step], cutmix=draws.cutmix[step], box=draws.box[step])
  prepare, normalize = _preprocessor(ds, image_size), _normalizer(ds, shape)

  def one_image(image, seed, shared_center):
    crop_seed, flip_seed, cutout_seed = augment.image_seeds(seed)
    image = normalize(augment.crop_and_flip(prepare(image), crop_seed, flip_seed, opts, shape))
    if opts.cutout:
      center = augment.random_center(cutout_seed, shape) if shared_center is None else shared_center
      image = augment.cutout(image, center, opts.cutout, shape)
    return image

  def example(row):
    center = row.get('cutout_center')
    out = {'image': one_image(row['image'], row['seed'], center), 'label': row['label']}
    if opts.mixing:
      other = one_image(row['partner_image'], row['partner_seed'], center)
      out['image'] = augment.mix(out['image'], other, row['lam'], row['cutmix'], row['box'], shape)
      out['target'] = (row['lam'] * tf.one_hot(row['label'], ds.num_classes)
                       + (1.0 - row['lam']) * tf.one_hot(row['partner_label'], ds.num_classes))
    return out

  data = tf.data.Dataset.from_tensor_slices(rows)
  data = data.map(example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  data = data.batch(local, drop_remainder=True)
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
  prepare, normalize = _preprocessor(ds, image_size), _normalizer(ds, input_shape(ds, image_size))

  def preprocess(batch):
    return {**batch, 'image': normalize(prepare(batch['image']))}

  data = tf.data.Dataset.from_tensor_slices({'image': images, 'label': labels, 'mask': mask})
  data = data.batch(batch_size).map(preprocess, num_parallel_calls=tf.data.AUTOTUNE,
                                    deterministic=True)
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


def _preprocessor(ds: Dataset, image_size: int):
  """Images (one or a batch) at the input size and channels: resized, gray tiled to RGB."""
  tf = tensorflow()
  tile = ds.grayscale_to_rgb and ds.image_shape[-1] == 1

  def prepare(images):
    if image_size:
      images = tf.image.resize(images, (image_size, image_size))
    return tf.image.grayscale_to_rgb(images) if tile else images

  return prepare


def normalization_mean(ds: Dataset, shape: tuple[int, int, int]) -> np.ndarray:
  """The mean that inputs of `shape` lose, in [0, 1] units: per channel (C,), or the
  per-pixel mean image resized to `shape` (H, W, C) (bilinear resizing is linear, so the
  resized mean is the mean of the resized images)."""
  if ds.pixel_mean is None:
    return np.asarray(ds.mean, np.float32)
  if ds.pixel_mean.shape[:2] == shape[:2]:
    return np.asarray(ds.pixel_mean, np.float32)
  return tensorflow().image.resize(ds.pixel_mean.astype(np.float32), shape[:2]).numpy()


def _normalizer(ds: Dataset, shape: tuple[int, int, int]):
  """(x - mean) / std in 0..255 units: per-channel mean, or the per-pixel mean at `shape`."""
  tf = tensorflow()
  mean = tf.constant(normalization_mean(ds, shape), tf.float32) * 255.0
  std = tf.constant(ds.std, tf.float32) * 255.0

  def normalize(images):
    return (tf.cast(images, tf.float32) - mean) / std

  return normalize
