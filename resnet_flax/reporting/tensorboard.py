"""TensorBoard event files for a run: its training and test scalars and its hyperparameters.

  tensorboard --logdir runs/            # every run below runs/, a sweep's trials side by side

Writes workdir/tensorboard/ with the `tensorboard` package alone: its summary protos (the
scalars and hparams plugins' own `*_pb` builders, so the HParams tab compares the trials of a
sweep by their config) framed as TFRecords by its RecordWriter, as torch.utils.tensorboard
does. Not through tf.summary: importing TensorFlow takes seconds and would hold up the first
log line of every run whose data lives on the device, which needs no tf.data until it evaluates
(benchmarks/NOTES.md). Only process 0 writes; on the others every method does nothing.
"""

import numbers
import os
import socket
import time
from collections.abc import Mapping
from typing import Any, Self

import jax
import ml_collections
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import summary_v2 as hparams_summary
from tensorboard.plugins.scalar import summary_v2 as scalar_summary
from tensorboard.summary.writer.record_writer import RecordWriter

from resnet_flax.reporting.writer import split_record

_SKIPPED = ('step', 'epoch')  # the x-axis, not a curve


class TensorBoardWriter:
  """A MetricWriter (reporting/writer.py): `record(r)` (or `scalars(step, values, prefix)`) per
  log line; `hparams(config, metrics)` at the end."""

  def __init__(self, workdir: str, subdir: str = 'tensorboard'):
    self.enabled = jax.process_index() == 0
    self.directory = f'{workdir}/{subdir}'
    if not self.enabled:
      return
    self._writer = _EventFile(self.directory)

  def scalars(self, step: int, values: Mapping[str, Any], prefix: str = '') -> None:
    """Writes each number in `values` as tag `prefix/key` (step and epoch are skipped)."""
    if not self.enabled:
      return
    for key, value in values.items():
      if key not in _SKIPPED and _is_number(value):
        tag = f'{prefix}/{key}' if prefix else key
        self._writer.write(scalar_summary.scalar_pb(tag, float(value)), int(step))
    self._writer.flush()

  def record(self, record: Mapping[str, Any]) -> None:
    """A metrics.jsonl record: training ones as train/loss, train/accuracy, train/learning_rate,
    train/images_per_sec; evaluations as test/loss, test/accuracy, test/top5_accuracy and
    (with a validation split) val/loss, val/accuracy, val/top5_accuracy."""
    for prefix, values in split_record(record).items():
      self.scalars(record['step'], values, prefix)

  def hparams(self, config: ml_collections.ConfigDict | Mapping[str, Any],
              metrics: Mapping[str, Any] | None = None, step: int | None = None) -> None:
    """The run's config (flattened: `optim.learning_rate`) for the HParams tab; `metrics`
    (e.g. the final results) as `final/<name>` scalars at `step` (default: metrics['step'])."""
    if not self.enabled:
      return
    self._writer.write(hparams_summary.hparams_pb(flatten_config(config)), 0)
    self._writer.flush()
    if metrics:
      self.scalars(metrics.get('step', 0) if step is None else step, metrics, 'final')

  def close(self) -> None:
    if self.enabled:
      self._writer.close()
      self.enabled = False

  def __enter__(self) -> Self:
    return self

  def __exit__(self, *exc: object) -> None:
    self.close()


class _EventFile:
  """One event file: TFRecords of `Event` protos, a version record first (what TensorBoard's
  readers expect of any file named events.out.tfevents.*)."""

  def __init__(self, directory: str):
    os.makedirs(directory, exist_ok=True)
    name = f'events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.v2'
    path = os.path.join(directory, name)
    self._records = RecordWriter(open(path, 'ab'))  # pylint: disable=consider-using-with
    self._add(event_pb2.Event(file_version='brain.Event:2'))

  def write(self, summary: summary_pb2.Summary, step: int) -> None:
    self._add(event_pb2.Event(summary=summary, step=step))

  def _add(self, event: event_pb2.Event) -> None:
    event.wall_time = time.time()
    self._records.write(event.SerializeToString())

  def flush(self) -> None:
    self._records.flush()

  def close(self) -> None:
    self._records.close()


def flatten_config(config: ml_collections.ConfigDict | Mapping[str, Any],
                   prefix: str = '') -> dict[str, bool | int | float | str]:
  """{'optim': {'learning_rate': 0.1}} -> {'optim.learning_rate': 0.1}; other values (tuples,
  None) as strings, the only kinds the hparams plugin accepts."""
  if isinstance(config, ml_collections.ConfigDict):
    config = config.to_dict()
  flat = {}
  for key, value in config.items():
    name = f'{prefix}{key}'
    if isinstance(value, Mapping):
      flat |= flatten_config(value, f'{name}.')
    elif isinstance(value, (bool, str)) or _is_number(value):
      flat[name] = value
    else:
      flat[name] = str(value)
  return flat


def _is_number(value: Any) -> bool:
  return isinstance(value, numbers.Real) and not isinstance(value, bool)
