"""Weights & Biases logging of a run's metrics.jsonl records, on when `config.wandb.project` is set.

  pip install -e ".[wandb]" -c requirements.txt
  python train.py --config configs/digits.py --workdir runs/digits --config.wandb.project=digits

The same curves as TensorBoard (train/loss, test/accuracy, val/top5_accuracy, ...) against the
training step, the flattened config as the run's config, and the final metrics as `final/<name>`
in the run's summary. `wandb` is imported only when a project is set. The run's id is kept in
workdir/wandb_run_id, so a resumed run continues the same W&B run and its curves; records that
a killed run logged past its last checkpoint are logged again on resume, and W&B keeps the
first of a step it already has. Files go under the workdir (workdir/wandb/) unless WANDB_DIR
says otherwise; WANDB_MODE=offline (or `config.wandb.mode='offline'`) writes them without a
network, for `wandb sync` later. Only process 0 writes.
"""

import os
import secrets
import string
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import ml_collections

from resnet_flax.errors import UserError
from resnet_flax.reporting.tensorboard import flatten_config
from resnet_flax.reporting.writer import split_record

RUN_ID_FILE = 'wandb_run_id'


def import_wandb() -> ModuleType:
  """The wandb module, or a UserError saying how to install it."""
  try:
    import wandb  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise UserError(
        f'config.wandb.project is set, but the wandb package cannot be imported ({e}). Install '
        'the W&B extra with `pip install -e ".[wandb]" -c requirements.txt`, or leave '
        "--config.wandb.project='' to train without W&B logging.") from e
  return wandb


def run_id(workdir: str) -> str:
  """The workdir's W&B run id: read from workdir/wandb_run_id, else made and stored there."""
  path = os.path.join(workdir, RUN_ID_FILE)
  if os.path.exists(path):
    with open(path) as f:
      stored = f.read().strip()
    if stored:
      return stored
  new = ''.join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(12))
  with open(path + '.tmp', 'w') as f:
    f.write(new + '\n')
  os.replace(path + '.tmp', path)
  return new


class WandbWriter:
  """One W&B run per workdir (a MetricWriter); made at the run's first record."""

  def __init__(self, workdir: str, settings: ml_collections.ConfigDict,
               config: ml_collections.ConfigDict, wandb: ModuleType):
    self._wandb = wandb
    self.run = wandb.init(
        project=settings.project, entity=settings.entity or None,
        name=settings.name or os.path.basename(os.path.abspath(workdir)),
        mode=settings.mode or None, dir=os.environ.get('WANDB_DIR') or workdir,
        id=run_id(workdir), resume='allow', config=flatten_config(config),
        reinit='create_new')

  def record(self, record: Mapping[str, Any]) -> None:
    """Logs the record's numbers as `<prefix>/<name>` at its training step."""
    values = {f'{prefix}/{key}': value
              for prefix, group in split_record(record).items()
              for key, value in group.items() if key not in ('step', 'epoch') and _number(value)}
    values['epoch'] = record.get('epoch', 0)
    self.run.log(values, step=int(record['step']))

  def hparams(self, config: ml_collections.ConfigDict | Mapping[str, Any],
              metrics: Mapping[str, Any] | None = None) -> None:
    """The config again (it may have grown on resume) and `final/<name>` summary values."""
    self.run.config.update(flatten_config(config), allow_val_change=True)
    if metrics:
      self.run.summary.update({f'final/{k}': v for k, v in metrics.items() if _number(v)})

  def close(self) -> None:
    if self.run is not None:
      self.run.finish()
      self.run = None


def _number(value: Any) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)
