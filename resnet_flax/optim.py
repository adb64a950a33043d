"""Optimizer and learning-rate schedule from `config.optim`, all from optax."""

import jax
import ml_collections
import optax

from resnet_flax.errors import UserError

SCHEDULES = ('constant', 'step', 'exponential', 'cosine')
OPTIMIZERS = ('sgd', 'adam')


def create_schedule(cfg: ml_collections.ConfigDict, steps_per_epoch: int,
                    total_steps: int) -> optax.Schedule:
  """Per-step learning rate; milestones and warm-up are given in epochs."""
  lr = cfg.learning_rate
  warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
  if cfg.schedule == 'constant':
    main = optax.constant_schedule(lr)
  elif cfg.schedule == 'step':
    boundaries = {int(round(m * steps_per_epoch)) - warmup: cfg.decay_factor for m in cfg.milestones}
    main = optax.piecewise_constant_schedule(lr, boundaries)
  elif cfg.schedule == 'exponential':  # staircase: x decay_factor every decay_every_epochs
    main = optax.exponential_decay(lr, int(round(cfg.decay_every_epochs * steps_per_epoch)),
                                   cfg.decay_factor, staircase=True)
  elif cfg.schedule == 'cosine':
    main = optax.cosine_decay_schedule(lr, max(total_steps - warmup, 1))
  else:
    raise UserError(f'Unknown schedule {cfg.schedule!r}: set --config.optim.schedule to one '
                    f'of {", ".join(SCHEDULES)}.')
  if not warmup:
    return main
  return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])


def create_optimizer(cfg: ml_collections.ConfigDict, schedule: optax.Schedule) -> optax.GradientTransformation:
  """SGD (momentum) or Adam, with L2 weight decay added to the gradient as torch.optim does."""
  if cfg.optimizer == 'sgd':
    base = optax.sgd(schedule, momentum=cfg.momentum or None, nesterov=cfg.nesterov)
  elif cfg.optimizer == 'adam':
    base = optax.adam(schedule, b1=cfg.adam_b1, b2=cfg.adam_b2, eps=cfg.adam_eps)
  else:
    raise UserError(f'Unknown optimizer {cfg.optimizer!r}: set --config.optim.optimizer to one '
                    f'of {", ".join(OPTIMIZERS)}.')
  if not cfg.weight_decay:
    return base
  mask = None if cfg.decay_bn_and_bias else _kernels_only
  return optax.chain(optax.add_decayed_weights(cfg.weight_decay, mask), base)


def _kernels_only(params):
  """Decay conv and dense kernels only; BN scales/biases and dense biases are left alone."""
  return jax.tree_util.tree_map_with_path(
      lambda path, _: getattr(path[-1], 'key', None) == 'kernel', params)
