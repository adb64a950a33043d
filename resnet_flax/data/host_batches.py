"""Batches from host memory: uint8 training images in the epoch's order, padded eval batches.

The host only indexes: preprocessing and augmentation happen inside the compiled step
(batches.py), so a host-fed run and a run with its data on the device see the same batches.
With several processes each yields its own contiguous slice of every global batch.
"""

from collections.abc import Iterator

import numpy as np

from resnet_flax.data import batches
from resnet_flax.data.dataset import Dataset, Split

Batch = dict[str, np.ndarray]


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  """Full batches per epoch; the remainder is dropped (it is reshuffled in next epoch)."""
  return num_examples // batch_size


def train_batches(ds: Dataset, *, batch_size: int, seed: int, epoch: int, start_step: int = 0,
                  process_index: int = 0, process_count: int = 1) -> Iterator[Batch]:
  """Epoch `epoch`'s batches from step `start_step` on: {'image': uint8 NHWC, 'label': int32},
  this process's slice of each global batch of `batch_size`."""
  n_steps = steps_per_epoch(len(ds.train), batch_size)
  order = batches.epoch_order(seed, epoch, len(ds.train), n_steps * batch_size)
  mine = _process_rows(n_steps, batch_size, process_index, process_count)
  local = _local_batch_size(batch_size, process_count)
  for step in range(start_step, n_steps):
    idx = order[mine[step * local:(step + 1) * local]]
    yield {'image': ds.train.images[idx], 'label': ds.train.labels[idx].astype(np.int32)}


def eval_batches(split: Split, batch_size: int, process_index: int = 0,
                 process_count: int = 1) -> Iterator[Batch]:
  """Every example of `split` exactly once, as uint8 batches; the last one is zero-padded.

  Each batch carries 'mask' (1.0 real, 0.0 padding) so metrics divide by the true count.
  """
  n = len(split)
  n_batches = -(-n // batch_size)
  local = _local_batch_size(batch_size, process_count)
  mine = _process_rows(n_batches, batch_size, process_index, process_count)
  for rows in mine.reshape(n_batches, local):
    real = rows < n
    idx = np.where(real, rows, 0)
    yield {'image': np.where(real[:, None, None, None], split.images[idx], np.uint8(0)),
           'label': np.where(real, split.labels[idx], 0).astype(np.int32),
           'mask': real.astype(np.float32)}


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
