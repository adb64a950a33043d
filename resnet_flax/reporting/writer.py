"""The metric-writer interface that MetricsLog fans each metrics.jsonl record out to.

metrics.jsonl is the run's source of truth (tests, plots, sweeps and resumption read it);
writers are views of it for dashboards: TensorBoard (reporting/tensorboard.py) and Weights &
Biases (reporting/wandb_writer.py). A writer is made at the first record, not at start, so a run
refused at start writes nothing, and only on process 0.
"""

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import ml_collections

SPLITS = ('test', 'val')  # an evaluation record's keys are `<split>_<metric>`
# config.wandb.mode: '' leaves it to $WANDB_MODE, else wandb's default (online).
WANDB_MODES = ('', 'online', 'offline', 'disabled')


class MetricWriter(Protocol):
  """What MetricsLog needs of a dashboard writer."""

  def record(self, record: Mapping[str, Any]) -> None:
    """One metrics.jsonl record (a training log line or an evaluation)."""

  def hparams(self, config: ml_collections.ConfigDict | Mapping[str, Any],
              metrics: Mapping[str, Any] | None = None) -> None:
    """The run's config and its final metrics, once, at the end."""

  def close(self) -> None:
    """Flushes and ends the writer; called once, also when the run stops early."""


WriterFactory = Callable[[], MetricWriter]


def split_record(record: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
  """A record's values by the prefix dashboards show them under: a training record's all under
  'train' (loss, accuracy, learning_rate, images_per_sec, step, epoch); an evaluation's
  `test_loss` as 'test' {'loss'}, `val_accuracy` as 'val' {'accuracy'}, and so on."""
  if 'test_loss' not in record:
    return {'train': dict(record)}
  groups = {split: {k.removeprefix(f'{split}_'): v for k, v in record.items()
                    if k.startswith(f'{split}_')} for split in SPLITS}
  return {split: values for split, values in groups.items() if values}


def writer_factories(config: ml_collections.ConfigDict, workdir: str) -> list[WriterFactory]:
  """The writers `config` enables (config.tensorboard, config.wandb.project), not yet made.

  A W&B project with the wandb package missing is a UserError here, before any data loads.
  """
  factories: list[WriterFactory] = []
  if config.get('tensorboard', False):
    from resnet_flax.reporting.tensorboard import TensorBoardWriter
    factories.append(lambda: TensorBoardWriter(workdir))
  settings = config.get('wandb')
  if settings is not None and settings.get('project'):
    from resnet_flax.reporting import wandb_writer  # imports wandb itself only here
    module = wandb_writer.import_wandb()
    factories.append(lambda: wandb_writer.WandbWriter(workdir, settings, config, module))
  return factories
