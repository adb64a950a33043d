"""Training length and the log / eval / checkpoint intervals, resolved to steps in one place.

The training length is `num_steps`, or `num_examples` (rounded up to whole steps), or else
`num_epochs`; an epoch is len(train) // batch_size steps. Evaluations and checkpoints happen
every `*_every_epochs` epochs, and also every `*_every_steps` steps when that is set, and always
after the last step.
"""

import dataclasses
import math

import ml_collections

from resnet_flax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Durations:
  steps_per_epoch: int
  total_steps: int
  log_every: int
  eval_every_epochs: int
  eval_every_steps: int  # 0: only at epoch ends
  checkpoint_every_epochs: int
  checkpoint_every_steps: int  # 0: only at epoch ends

  @property
  def num_epochs(self) -> int:
    """Epochs begun, the last possibly partial."""
    return math.ceil(self.total_steps / self.steps_per_epoch)

  def is_epoch_end(self, step: int) -> bool:
    return step % self.steps_per_epoch == 0

  def log_now(self, step: int) -> bool:
    return step % self.log_every == 0 or self.is_epoch_end(step) or step == self.total_steps

  def eval_now(self, step: int) -> bool:
    return self._due(step, self.eval_every_epochs, self.eval_every_steps)

  def checkpoint_now(self, step: int) -> bool:
    return self._due(step, self.checkpoint_every_epochs, self.checkpoint_every_steps)

  def _due(self, step: int, every_epochs: int, every_steps: int) -> bool:
    epoch_end = self.is_epoch_end(step) and (step // self.steps_per_epoch) % every_epochs == 0
    return step == self.total_steps or epoch_end or bool(every_steps and step % every_steps == 0)


def total_steps(config: ml_collections.ConfigDict, steps_per_epoch: int) -> int:
  """The run's length in steps (what length-shaped schedules such as cosine span)."""
  steps, examples = config.get('num_steps', 0), config.get('num_examples', 0)
  if steps and examples:
    raise UserError(f'--config.num_steps={steps} and --config.num_examples={examples} both set '
                    'the training length: set one of them (and leave the other 0).')
  if steps < 0 or examples < 0:
    raise UserError('--config.num_steps and --config.num_examples cannot be negative (0: use '
                    'num_epochs).')
  if steps:
    return steps
  if examples:
    return math.ceil(examples / config.batch_size)
  if config.num_epochs < 1:
    raise UserError(f'--config.num_epochs={config.num_epochs} must be at least 1 (or set '
                    '--config.num_steps or --config.num_examples).')
  return config.num_epochs * steps_per_epoch


def resolve(config: ml_collections.ConfigDict, steps_per_epoch: int) -> Durations:
  """Every duration of `config` in steps; raises UserError for an interval that is not >= 1."""
  for key in ('log_every_steps', 'eval_every_epochs', 'checkpoint_every_epochs'):
    if config[key] < 1:
      raise UserError(f'--config.{key}={config[key]} must be at least 1 (a large value makes it '
                      'rare; the *_every_steps intervals take 0 for off).')
  for key in ('eval_every_steps', 'checkpoint_every_steps'):
    if config.get(key, 0) < 0:
      raise UserError(f'--config.{key}={config[key]} must be 0 (off) or more.')
  return Durations(steps_per_epoch=steps_per_epoch,
                   total_steps=total_steps(config, steps_per_epoch),
                   log_every=config.log_every_steps,
                   eval_every_epochs=config.eval_every_epochs,
                   eval_every_steps=config.get('eval_every_steps', 0),
                   checkpoint_every_epochs=config.checkpoint_every_epochs,
                   checkpoint_every_steps=config.checkpoint_every_steps)
