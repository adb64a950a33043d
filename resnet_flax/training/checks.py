"""Start-up checks: what would otherwise fail late (at the first save, the first evaluation)
fails before any step, with a message that says what to change."""

import os
import shutil

import ml_collections

from resnet_flax.checkpoints.checkpointing import checkpoint_bytes
from resnet_flax.data import Dataset
from resnet_flax.errors import UserError
from resnet_flax.training.train_state import TrainState


def best_metric(config: ml_collections.ConfigDict, dataset: Dataset) -> str:
  valid = ['test_accuracy', 'test_loss'] + (['val_accuracy', 'val_loss'] if dataset.validation
                                            else [])
  if config.checkpoint_best_metric not in valid:
    raise UserError(f'--config.checkpoint_best_metric={config.checkpoint_best_metric!r}: use '
                    f'one of {", ".join(map(repr, valid))} (accuracies are kept when highest, '
                    'losses when lowest; the val_ ones need --config.data.validation_size).')
  return config.checkpoint_best_metric


def check_writable(workdir: str) -> None:
  probe = os.path.join(workdir, f'.write-test-{os.getpid()}')
  try:
    os.makedirs(workdir, exist_ok=True)
    with open(probe, 'w') as f:
      f.write('ok')
    os.remove(probe)
  except OSError as e:
    raise UserError(f'Cannot write to --workdir={workdir} ({e.strerror or e}). Choose a '
                    'directory you can write to.') from None


def check_disk_space(workdir: str, state: TrainState, copies: int) -> None:
  """Fails at start, not at the first save, when the checkpoints cannot fit."""
  need = checkpoint_bytes(state) * (copies + 1)  # +1: a new one is written before an old one goes
  free = shutil.disk_usage(workdir).free
  if free < need:
    raise UserError(f'{workdir} has {free / 2**20:,.0f} MiB free, but its checkpoints need about '
                    f'{need / 2**20:,.0f} MiB. Free disk space, lower '
                    '--config.checkpoint_keep, or use another --workdir.')


def check_intervals(config: ml_collections.ConfigDict) -> None:
  """The checkpoint policy; durations.resolve checks the lengths and intervals."""
  if config.checkpoint_keep < 1:
    raise UserError(f'--config.checkpoint_keep={config.checkpoint_keep} must be at least 1 '
                    '(checkpoint_keep_best=0 turns the best-checkpoint copies off).')
  if config.checkpoint_keep_best < 0:
    raise UserError(f'--config.checkpoint_keep_best={config.checkpoint_keep_best} must be 0 '
                    '(off) or more.')


def check_batch_sizes(config: ml_collections.ConfigDict, dataset: Dataset,
                       devices: int, processes: int) -> None:
  for key in ('batch_size', 'eval_batch_size'):
    if config[key] % devices:
      raise UserError(f'--config.{key}={config[key]} is not divisible by the {devices} devices '
                      f'({processes} process(es)) that share it: it is the global batch. Use a '
                      'multiple of the device count.')
  if config.batch_size > len(dataset.train):
    raise UserError(f'--config.batch_size={config.batch_size} exceeds the {len(dataset.train)} '
                    'training images; not a single batch fits in an epoch.')
