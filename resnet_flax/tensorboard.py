"""TensorBoard event files for a run: its training and test scalars and its hyperparameters.

  tensorboard --logdir runs/            # every run below runs/, a sweep's trials side by side

Writes workdir/tensorboard/ through tf.summary and the hparams plugin of the `tensorboard`
package, so the HParams tab compares the trials of a sweep by their config. Only process 0
writes; on the others every method does nothing. TensorFlow is imported through `data.tf_cpu`,
which hides the GPUs from it first (JAX owns them). Not through flax.metrics.tensorboard: it
imports the plugin's Keras callback, and so Keras, 1.2 s of every start (benchmarks/NOTES.md).
"""

import numbers
from collections.abc import Mapping
from typing import Any, Self

import jax
import ml_collections

from resnet_flax.data.tf_cpu import tensorflow

_SKIPPED = ('step', 'epoch')  # the x-axis, not a curve


class TensorBoardWriter:
  """`scalars(step, values, prefix)` or `record(r)` per log line; `hparams(config, metrics)`."""

  def __init__(self, workdir: str, subdir: str = 'tensorboard'):
    self.enabled = jax.process_index() == 0
    self.directory = f'{workdir}/{subdir}'
    if not self.enabled:
      return
    self._tf = tensorflow()
    self._writer = self._tf.summary.create_file_writer(self.directory)

  def scalars(self, step: int, values: Mapping[str, Any], prefix: str = '') -> None:
    """Writes each number in `values` as tag `prefix/key` (step and epoch are skipped)."""
    if not self.enabled:
      return
    with self._writer.as_default():  # flushes on exit
      for key, value in values.items():
        if key not in _SKIPPED and _is_number(value):
          self._tf.summary.scalar(f'{prefix}/{key}' if prefix else key, float(value), int(step))

  def record(self, record: Mapping[str, Any]) -> None:
    """A metrics.jsonl record: training ones as train/loss, train/accuracy, train/learning_rate,
    train/images_per_sec; evaluations as test/loss, test/accuracy, test/top5_accuracy and
    (with a validation split) val/loss, val/accuracy, val/top5_accuracy."""
    if 'test_loss' not in record:
      self.scalars(record['step'], record, 'train')
      return
    for split in ('test', 'val'):
      values = {k.removeprefix(f'{split}_'): v for k, v in record.items()
                if k.startswith(f'{split}_')}
      self.scalars(record['step'], values, split)

  def hparams(self, config: ml_collections.ConfigDict | Mapping[str, Any],
              metrics: Mapping[str, Any] | None = None, step: int | None = None) -> None:
    """The run's config (flattened: `optim.learning_rate`) for the HParams tab; `metrics`
    (e.g. the final results) as `final/<name>` scalars at `step` (default: metrics['step'])."""
    if not self.enabled:
      return
    from tensorboard.plugins.hparams import summary_v2  # pylint: disable=g-import-not-at-top
    with self._writer.as_default():
      summary_v2.hparams(flatten_config(config))
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
