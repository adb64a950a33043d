"""Whether a workdir's checkpoint belongs to the run being started."""

from typing import Any

import ml_collections
from flax import traverse_util

from resnet_flax.errors import UserError

# Fields that may change between a run and its resumption: they do not change what has
# been computed so far (longer training, logging, where the data lives, checkpoint policy).
MAY_CHANGE = ('num_epochs', 'num_steps', 'num_examples', 'log_every_steps', 'eval_every_epochs',
              'eval_every_steps', 'checkpoint_every_epochs',
              'checkpoint_every_steps', 'checkpoint_keep', 'checkpoint_keep_best',
              'progress_bar', 'tensorboard', 'wandb', 'write_plots', 'profile_steps',
              'compilation_cache_dir', 'cpu_host_memory_tuning',
              'data.data_dir', 'data.download', 'data.cifar_dir', 'eval_batch_size',
              'model.init_from', 'model.init_reinit_head', 'model.conv_backend',
              'model.recompute_bn', 'model.scan_blocks', 'model.remat_blocks',  # same function
              # how the same computation is laid out over devices and hosts
              'parallel.mode', 'parallel.transfer_guard', 'parallel.distributed',
              'parallel.coordinator_address', 'parallel.num_processes', 'parallel.process_id',
              'parallel.cpu_devices', 'parallel.preemption_check_every_steps')

# Fields added after checkpoints were first written, with the value that reproduces how runs
# saved before them behaved: such a run resumes when the field still has that value.
FORMERLY = {'model.bn_running_var': 'biased', 'optim.decay_begin_epochs': 0.0,
            'optim.adam_eps_placement': 'corrected', 'augment.policy': 'none',
            'augment.randaugment_n': 2, 'augment.randaugment_m': 9}


# Schedules shaped by the total number of steps: training longer would reshape the past.
LENGTH_DEPENDENT_SCHEDULES = ('cosine', 'onecycle')


def config_differences(saved: dict[str, Any], current: ml_collections.ConfigDict) -> list[str]:
  """'key: saved -> current' for every field that differs and may not change on resume."""
  old = traverse_util.flatten_dict(saved, sep='.')
  new = traverse_util.flatten_dict(current.to_dict(), sep='.')
  diffs = []
  length = ('num_epochs', 'num_steps', 'num_examples')
  if current.optim.schedule in LENGTH_DEPENDENT_SCHEDULES:
    for key in length:
      if old.get(key, 0) != new.get(key, 0):
        diffs.append(f'{key}: {old.get(key, 0)!r} -> {new.get(key, 0)!r} (the '
                     f'{current.optim.schedule} schedule spans the whole run, so it cannot be '
                     'extended)')
  for key in sorted(set(old) | set(new)):
    if key in MAY_CHANGE or any(key.startswith(k + '.') for k in MAY_CHANGE):
      continue
    a = old.get(key, FORMERLY.get(key, '<absent>'))
    b = new.get(key, '<absent>')
    if _normalise(a) != _normalise(b):
      diffs.append(f'{key}: {a!r} -> {b!r}')
  return diffs


def check_same_run(saved: dict[str, Any], current: ml_collections.ConfigDict, directory: str) -> None:
  """Refuses to resume (or overwrite) a checkpoint written by a different model or config."""
  diffs = config_differences(saved, current)
  if diffs:
    shown = '; '.join(diffs[:8]) + (f'; and {len(diffs) - 8} more' if len(diffs) > 8 else '')
    raise UserError(
        f'The checkpoints in {directory} belong to another run: its config differs in {shown}. '
        'Nothing was changed. Use a new --workdir for the new config, or rerun with the '
        'original values to resume that run.')


def _normalise(value: Any) -> Any:
  """JSON turns tuples into lists; compare them as equal."""
  return tuple(map(_normalise, value)) if isinstance(value, (list, tuple)) else value
