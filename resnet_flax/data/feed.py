"""The training feed: what the trainer passes to each step, from the device or from the host.

Both paths end in the same compiled batch builder (batches.py): the trainer does not know
which one runs, except for the line it prints.
"""

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import jax
import ml_collections

from resnet_flax.data import batches, host_batches, on_device
from resnet_flax.data.augment import Augment
from resnet_flax.data.dataset import Dataset
from resnet_flax.data.preprocess import Preprocess


class Feed:
  """Step inputs for every epoch, and the step wrapper that turns them into batches."""

  def __init__(self, config: ml_collections.ConfigDict, ds: Dataset,
               devices: list[jax.Device]):
    self.ds, self.seed, self.batch_size = ds, config.seed, config.batch_size
    self.on_device = on_device.wanted(config.data.get('on_device', 'off'), ds, devices)
    self.steps_per_epoch = host_batches.steps_per_epoch(len(ds.train), config.batch_size)
    self.opts = Augment.from_config(config.augment)
    self.prep = Preprocess.from_dataset(ds, config.data.image_size)
    self._data = None

  @property
  def where(self) -> str:
    return 'on the device' if self.on_device else 'from host memory'

  def wrap(self, step_fn: Callable[..., Any], sharding: jax.sharding.Sharding) -> Callable[..., Any]:
    """`step_fn(state, batch, rng, axis_name)` taking this feed's inputs instead of a batch."""
    return batches.feeding(step_fn, self.opts, self.prep, seed=self.seed,
                           batch_size=self.batch_size, steps_per_epoch=self.steps_per_epoch,
                           num_classes=self.ds.num_classes, num_shards=jax.device_count(),
                           sharding=sharding)

  def epoch(self, epoch: int, first_step: int, runner: Any) -> Iterator[Any]:
    """The inputs of epoch `epoch`'s steps from `first_step` on, placed as `runner` wants them:
    the same on-device data every step, or this process's slice of each uint8 batch."""
    if self.on_device:
      if self._data is None:  # placed once, at the first step that needs it
        self._data = runner.put_data(on_device.put_on_device(self.ds, runner.replicated))
      return itertools.repeat(self._data, self.steps_per_epoch - first_step)
    host = host_batches.train_batches(
        self.ds, batch_size=self.batch_size, seed=self.seed, epoch=epoch, start_step=first_step,
        process_index=jax.process_index(), process_count=jax.process_count())
    return map(runner.put_batch, host)
