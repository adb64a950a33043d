"""A trained run back from its workdir: config, model and state, for evaluation and prediction.

Everything needed is in the checkpoint's JSON record (config and data description), so
neither the config file nor the dataset has to be at hand.
"""

import os
import sys
from typing import Any, Callable

import flax.linen as nn
import jax
import ml_collections

from resnet_flax.training import build
from resnet_flax.checkpoints import quiet
from resnet_flax.checkpoints.checkpointing import Checkpointer
from resnet_flax.cpu import runtime as cpu_runtime
from resnet_flax.errors import UserError
from resnet_flax.training.train_state import TrainState

Run = tuple[ml_collections.ConfigDict, nn.Module, TrainState, dict[str, Any]]


def restore_run(workdir: str, step: int | None = None) -> Run:
  """(config, model, state, meta) of checkpoint `step`, or of the newest readable one."""
  directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
  if not os.path.isdir(directory):  # checked first: Checkpointer would create it
    raise _no_checkpoints(directory)
  ckpt = Checkpointer(workdir, keep=1, read_only=True)
  try:
    available = ckpt.steps()
    if not available:
      raise _no_checkpoints(directory)
    if step is None:
      return _newest_readable(ckpt, available)
    if step not in available:
      raise UserError(f'--step {step}: {directory} has no checkpoint of that step. Available '
                      f'steps: {", ".join(map(str, available))}. Pass one of them, or leave '
                      'out --step for the newest.')
    return _restore(ckpt, step)
  finally:
    ckpt.close()


def _no_checkpoints(directory: str) -> UserError:
  return UserError(f'No checkpoints in {directory}. Training writes its checkpoints there '
                   '(`python train.py --workdir DIR` saves to DIR/checkpoints); pass the '
                   '--workdir of a run that has saved at least one.')


def _newest_readable(ckpt: Checkpointer, available: list[int]) -> Run:
  """The newest checkpoint that reads back; a broken one is reported and skipped, never moved."""
  errors = []
  for i, step in reversed(list(enumerate(available))):
    try:
      return _restore(ckpt, step)
    except UserError as e:
      errors.append(str(e))
      if i:
        print(f'warning: {e} Trying step {available[i - 1]}.', file=sys.stderr)
  raise UserError(f'None of the checkpoints in {ckpt.directory} can be read: '
                  + ' '.join(errors))


def _restore(ckpt: Checkpointer, step: int) -> Run:
  meta = _read(ckpt, step, ckpt.read_meta)
  if 'data' not in meta:
    raise UserError(f'Checkpoint {step} in {ckpt.directory} predates the data record '
                    '(input shape, classes, normalisation) that evaluation and prediction '
                    'need. Retrain the run with the current train.py, which records it.')
  config = ml_collections.ConfigDict(meta['config'])
  data = meta['data']
  # The parts training takes on this backend: the same function, with the CPU's faster kernels.
  model = build.create_model(config.model, data['num_classes'],
                             parts=cpu_runtime.model_parts(config.model))
  state = _read(ckpt, step, lambda s: ckpt.restore(s, _target(config, model, data)))
  return config, model, state, meta


def _target(config: ml_collections.ConfigDict, model: nn.Module,
            data: dict[str, Any]) -> TrainState:
  """The state's structure, shapes and placement (this host's first device), computing nothing.

  The schedule length does not change the structure: any steps_per_epoch will do.
  """
  shapes = jax.eval_shape(
      lambda: build.create_state(config, model, tuple(data['image_shape']), steps_per_epoch=1)[0])
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), shapes)


def _read(ckpt: Checkpointer, step: int, read: Callable[[int], Any]) -> Any:
  try:
    return read(step)
  except Exception as e:  # orbax and tensorstore fail in many ways on a broken checkpoint
    raise UserError(f'Checkpoint {step} in {ckpt.directory} cannot be read ({quiet.describe(e)}). '
                    'It may be damaged or still being written; pass another '
                    '--step.') from e
