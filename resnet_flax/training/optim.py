"""Optimizer and learning-rate schedule from `config.optim`, all from optax."""

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax
import optax.contrib  # noqa: F401  (sam, normalize)

from resnet_flax.errors import UserError
from resnet_flax.training import adam_eps

WEIGHT_DECAY_MODES = ('coupled', 'decoupled')
MILESTONES_UNITS = ('epochs', 'steps')
WARMUP_SCHEDULES = ('constant', 'step', 'exponential', 'cosine')  # the others bring their own


LR_SCALINGS = ('none', 'linear')


def peak_learning_rate(cfg: ml_collections.ConfigDict, batch_size: int | None) -> float:
  """`learning_rate`, times batch_size / lr_base_batch under linear scaling (Goyal et al.)."""
  _require_one_of(cfg, 'lr_scaling', LR_SCALINGS)
  if cfg.lr_scaling == 'none':
    return cfg.learning_rate
  if batch_size is None:
    raise ValueError('linear lr scaling needs the global batch size')
  if cfg.lr_base_batch < 1:
    raise UserError(f'--config.optim.lr_base_batch={cfg.lr_base_batch}: linear lr scaling '
                    'needs the batch size the lr was tuned for (e.g. 256).')
  return cfg.learning_rate * batch_size / cfg.lr_base_batch


def create_schedule(cfg: ml_collections.ConfigDict, steps_per_epoch: int,
                    total_steps: int, batch_size: int | None = None) -> optax.Schedule:
  """Per-step learning rate, optionally after a warm-up; see `configs/default.py` for the fields.

  `batch_size` is the global batch (it matters only under linear lr scaling).
  """
  _check_schedule(cfg)
  lr = peak_learning_rate(cfg, batch_size)
  if cfg.schedule not in WARMUP_SCHEDULES:  # they bring their own warm-up
    return _float_count(SCHEDULES[cfg.schedule](cfg, lr, steps_per_epoch, total_steps, 0))
  warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
  main = SCHEDULES[cfg.schedule](cfg, lr, steps_per_epoch, total_steps, warmup)
  return _float_count(_after_warmup(optax.linear_schedule(0.0, lr, warmup), main, warmup))


def _float_count(schedule: optax.Schedule) -> optax.Schedule:
  """`schedule` given the step as a float of the default width: optax divides an int32 step
  in float32, which under jax_enable_x64 rounded a float64 run's lr (exponential, cosine) to
  float32; without x64 it is the same float32 arithmetic as before."""
  return lambda count: schedule(jnp.asarray(count, jnp.result_type(float)))


# name -> (cfg, peak lr, steps per epoch, total steps, warm-up steps) -> the schedule after the
# warm-up (counting from 0 at its end).
ScheduleBuilder = Callable[[ml_collections.ConfigDict, float, int, int, int], optax.Schedule]


def _step(cfg: ml_collections.ConfigDict, lr: float, steps_per_epoch: int, total_steps: int,
          warmup: int) -> optax.Schedule:
  del total_steps
  scale = steps_per_epoch if cfg.milestones_unit == 'epochs' else 1
  milestones = [int(round(m * scale)) for m in cfg.milestones]
  return _divide_at(lr, milestones, cfg.decay_factor, warmup, 'milestones')


def _he2016(cfg: ml_collections.ConfigDict, lr: float, steps_per_epoch: int, total_steps: int,
            warmup: int) -> optax.Schedule:
  """He et al.: a constant lr / 10 to warm up (ResNet-110), then lr / 10 at each milestone."""
  del steps_per_epoch, total_steps, warmup
  warmup = cfg.he_warmup_steps
  main = _divide_at(lr, cfg.he_milestones_steps, 0.1, warmup, 'he_milestones_steps')
  return _after_warmup(optax.constant_schedule(0.1 * lr), main, warmup)


SCHEDULES: dict[str, ScheduleBuilder] = {
    'constant': lambda cfg, lr, spe, total, warmup: optax.constant_schedule(lr),
    'step': _step,
    # staircase: x decay_factor every decay_every_epochs
    'exponential': lambda cfg, lr, spe, total, warmup: optax.exponential_decay(
        lr, int(round(cfg.decay_every_epochs * spe)), cfg.decay_factor, staircase=True,
        transition_begin=int(round(cfg.get('decay_begin_epochs', 0.0) * spe))),
    'cosine': lambda cfg, lr, spe, total, warmup: optax.cosine_decay_schedule(
        lr, max(total - warmup, 1)),
    # its own warm-up from lr / div_factor
    'onecycle': lambda cfg, lr, spe, total, warmup: optax.cosine_onecycle_schedule(
        max(total, 1), lr, cfg.onecycle_pct_start, cfg.onecycle_div_factor,
        cfg.onecycle_final_div_factor),
    'he2016': _he2016,
}


def _divide_at(lr: float, milestones: Sequence[int], factor: float, warmup: int,
               field: str) -> optax.Schedule:
  """Piecewise constant lr, x factor at each milestone (absolute steps, warm-up included)."""
  if any(m < warmup for m in milestones):
    raise UserError(f'--config.optim.{field} has milestones before the end of the warm-up '
                    f'(step {warmup}): make every milestone later than the warm-up, or shorten it.')
  return optax.piecewise_constant_schedule(lr, {m - warmup: factor for m in milestones})


def _after_warmup(warmup_schedule: optax.Schedule, main: optax.Schedule,
                  warmup: int) -> optax.Schedule:
  """`main` starts counting from 0 at the end of the warm-up."""
  if not warmup:
    return main
  return optax.join_schedules([warmup_schedule, main], [warmup])


def create_optimizer(cfg: ml_collections.ConfigDict, schedule: optax.Schedule,
                     axis_name: str | None = None) -> optax.GradientTransformation:
  """Clipping, then the optimizer with coupled (L2 in the gradient) or decoupled weight decay.

  With `sam_rho` > 0 all of it is wrapped in SAM (Foret et al.): its update needs a
  `grad_fn` (see steps.train_step); `axis_name` averages the adversarial gradients over
  the devices of a pmap/shard_map axis.
  """
  _check_optimizer(cfg)
  if cfg.optimizer == 'lars':  # its decay enters the trust ratio, inside optax.lars
    tx = optax.lars(schedule, weight_decay=cfg.weight_decay,
                    weight_decay_mask=_decay_mask(cfg) or True,
                    trust_coefficient=cfg.lars_trust_coefficient, trust_ratio_mask=_kernels_only,
                    momentum=cfg.momentum, nesterov=cfg.nesterov)
  else:
    tx = _with_weight_decay(cfg, DIRECTIONS[cfg.optimizer](cfg), schedule)
  if cfg.clip_grad_norm:
    tx = optax.chain(optax.clip_by_global_norm(cfg.clip_grad_norm), tx)
  if cfg.sam_rho:
    adversary = optax.chain(optax.contrib.normalize(), optax.sgd(cfg.sam_rho))
    tx = optax.contrib.sam(tx, adversary, sync_period=2, opaque_mode=True,
                           batch_axis_name=axis_name)
  return tx


# name -> the update direction before the learning rate (momentum, Adam's moments); the
# weight decay and the learning rate are added by _with_weight_decay. 'lars' is optax.lars.
DIRECTIONS: dict[str, Callable[[ml_collections.ConfigDict], optax.GradientTransformation]] = {
    'sgd': lambda cfg: (optax.trace(cfg.momentum, nesterov=cfg.nesterov) if cfg.momentum
                        else optax.identity()),
    'adam': lambda cfg: _adam(cfg),
    'adamw': lambda cfg: _adam(cfg),
}
ADAM_EPS_PLACEMENTS = ('corrected', 'raw')


def _adam(cfg: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Adam's direction; adam_eps_placement 'raw' is Keras's (training/adam_eps.py)."""
  placement = cfg.get('adam_eps_placement', 'corrected')
  if placement not in ADAM_EPS_PLACEMENTS:
    raise UserError(f'--config.optim.adam_eps_placement={placement!r} is not one of '
                    f'{", ".join(ADAM_EPS_PLACEMENTS)}: \'corrected\' (PyTorch, optax) or '
                    "'raw' (Keras).")
  if placement == 'raw':
    return adam_eps.scale_by_adam_raw_eps(cfg.adam_b1, cfg.adam_b2, cfg.adam_eps)
  return optax.scale_by_adam(cfg.adam_b1, cfg.adam_b2, cfg.adam_eps)
OPTIMIZERS = (*DIRECTIONS, 'lars')


def _with_weight_decay(cfg: ml_collections.ConfigDict, direction: optax.GradientTransformation,
                       schedule: optax.Schedule) -> optax.GradientTransformation:
  """The one place weight decay is applied. Coupled: g += wd * p before the direction
  (torch.optim.SGD/Adam). Decoupled: p -= lr * (direction + wd * p) (SGDW, AdamW).

  The chains nest as optax.sgd/adam/adamw nest theirs, so optimizer states keep their layout.
  """
  scale = optax.scale_by_learning_rate(schedule)
  decay = optax.add_decayed_weights(cfg.weight_decay, _decay_mask(cfg))
  if cfg.weight_decay_mode == 'decoupled' and (cfg.weight_decay or cfg.optimizer != 'sgd'):
    return optax.chain(direction, decay, scale)  # optax.adamw's chain, even at a decay of 0
  if not cfg.weight_decay:
    return optax.chain(direction, scale)
  return optax.chain(decay, optax.chain(direction, scale))


def _decay_mask(cfg: ml_collections.ConfigDict) -> Callable[[Any], Any] | None:
  return None if cfg.decay_bn_and_bias else _kernels_only


def _kernels_only(params):
  """Decay conv and dense kernels only; BN scales/biases and dense biases are left alone."""
  return jax.tree_util.tree_map_with_path(
      lambda path, _: getattr(path[-1], 'key', None) == 'kernel', params)


def _check_schedule(cfg: ml_collections.ConfigDict) -> None:
  """Refuses unknown names and settings that would silently do something else."""
  _require_one_of(cfg, 'schedule', tuple(SCHEDULES))
  _require_one_of(cfg, 'milestones_unit', MILESTONES_UNITS)
  _require_non_negative(cfg, 'learning_rate', 'warmup_epochs', 'decay_factor', 'he_warmup_steps',
                        *(['decay_begin_epochs'] if 'decay_begin_epochs' in cfg else []))
  if cfg.schedule == 'step':
    _require_increasing(cfg, 'milestones')
  if cfg.schedule == 'he2016':
    _require_increasing(cfg, 'he_milestones_steps')
  if cfg.warmup_epochs and cfg.schedule not in WARMUP_SCHEDULES:
    raise UserError(f'--config.optim.warmup_epochs is not used by the {cfg.schedule!r} schedule: '
                    f'set it to 0 (\'onecycle\' warms up by itself, \'he2016\' uses '
                    f'--config.optim.he_warmup_steps), or pick one of '
                    f'{", ".join(WARMUP_SCHEDULES)}.')
  if cfg.schedule == 'exponential' and cfg.decay_every_epochs <= 0:
    raise UserError('--config.optim.decay_every_epochs must be positive for the \'exponential\' '
                    'schedule: set it to the number of epochs between two decays (e.g. 1.0).')
  if cfg.schedule == 'onecycle':
    if not 0 < cfg.onecycle_pct_start < 1:
      raise UserError('--config.optim.onecycle_pct_start must lie strictly between 0 and 1: it is '
                      'the fraction of the steps spent raising the lr (e.g. 0.25).')
    for field in ('onecycle_div_factor', 'onecycle_final_div_factor'):
      if cfg[field] <= 0:
        raise UserError(f'--config.optim.{field} must be positive: the lr is divided by it.')


def _check_optimizer(cfg: ml_collections.ConfigDict) -> None:
  """Refuses unknown names, negative values and decay modes the optimizer cannot honour."""
  _require_one_of(cfg, 'optimizer', OPTIMIZERS)
  _require_one_of(cfg, 'weight_decay_mode', WEIGHT_DECAY_MODES)
  _require_non_negative(cfg, 'momentum', 'weight_decay', 'clip_grad_norm',
                        'lars_trust_coefficient', 'sam_rho')
  if not 0 <= cfg.ema_decay < 1:
    raise UserError(f'--config.optim.ema_decay={cfg.ema_decay}: use 0 (off) or a decay in '
                    '[0, 1), e.g. 0.999; evaluation then uses the averaged weights.')
  if cfg.optimizer == 'adamw' and cfg.weight_decay_mode == 'coupled':
    raise UserError('--config.optim.optimizer=adamw decouples the weight decay by definition, but '
                    '--config.optim.weight_decay_mode is \'coupled\': set weight_decay_mode to '
                    '\'decoupled\', or use optimizer \'adam\' for coupled L2 weight decay.')
  if cfg.optimizer == 'lars' and cfg.weight_decay_mode == 'decoupled':
    raise UserError('--config.optim.optimizer=lars adds the weight decay to the gradient before '
                    'its trust ratio (coupled), but --config.optim.weight_decay_mode is '
                    '\'decoupled\': set weight_decay_mode to \'coupled\' for LARS.')


def _require_one_of(cfg: ml_collections.ConfigDict, field: str, valid: Sequence[str]) -> None:
  if cfg[field] not in valid:
    raise UserError(f'Unknown {field} {cfg[field]!r}: set --config.optim.{field} to one of '
                    f'{", ".join(valid)}.')


def _require_non_negative(cfg: ml_collections.ConfigDict, *fields: str) -> None:
  for field in fields:
    if cfg[field] < 0:
      raise UserError(f'--config.optim.{field} is {cfg[field]}, but it cannot be negative: '
                      f'set it to 0 or more.')


def _require_increasing(cfg: ml_collections.ConfigDict, field: str) -> None:
  values = list(cfg[field])
  if any(v < 0 for v in values) or any(b <= a for a, b in zip(values, values[1:])):
    raise UserError(f'--config.optim.{field} is {tuple(values)}, but milestones must be '
                    f'non-negative and strictly increasing: e.g. (82, 123).')
