"""Model and train state from a config: shared by training, evaluation and prediction."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from resnet_flax.training import durations, optim, parallel
from resnet_flax.training.layout import block_layout

from resnet_flax import models
from resnet_flax.errors import UserError
from resnet_flax.models import parts as parts_lib
from resnet_flax.training.train_state import TrainState, create_train_state


def create_model(cfg: ml_collections.ConfigDict, num_classes: int,
                 bn_axis_name: str | None = None,
                 parts: parts_lib.ModelParts | None = None) -> nn.Module:
  """The model that `config.model` describes, built with `parts` (what computes its convs and
  BatchNorms: the trainer's come from resnet_flax.cpu.runtime; None: `plain_parts(cfg)`).
  `bn_axis_name`: see parallel.bn_axis_name."""
  block_options = {k: cfg[k] for k in ('dropout_rate', 'zero_init_last_bn') if cfg[k]}
  overrides = {'bn_axis_name': bn_axis_name} if bn_axis_name else {}
  parts = parts or plain_parts(cfg)
  if unbiased_running_var(cfg):
    overrides['bn_unbiased_running_var'] = True
  scan, remat = block_layout(cfg).fields()
  return models.create_model(cfg.name, num_classes=num_classes, dtype=jnp.dtype(cfg.dtype),
                             bn_momentum=cfg.bn_momentum, bn_epsilon=cfg.bn_epsilon,
                             scan_blocks=scan, remat_blocks=remat, block_options=block_options,
                             **parts.fields(), **overrides)


def plain_parts(cfg: ml_collections.ConfigDict) -> parts_lib.ModelParts:
  """The pure-JAX parts for `config.model` on any backend: lax's convs, and flax's BatchNorm
  unless model.recompute_bn is 'on'. Evaluation and prediction need nothing more."""
  return parts_lib.plain(block_layout(cfg).scan, recompute_bn(cfg.get('recompute_bn', 'auto')) is True,
                         unbiased_running_var(cfg))


BN_RUNNING_VARS = ('unbiased', 'biased')


def unbiased_running_var(cfg: ml_collections.ConfigDict) -> bool:
  """Whether `config.model.bn_running_var` asks for PyTorch's running variance."""
  value = cfg.get('bn_running_var', 'biased')
  if value not in BN_RUNNING_VARS:
    raise UserError(f'--config.model.bn_running_var={value!r} is not one of '
                    f'{", ".join(BN_RUNNING_VARS)}: \'unbiased\' averages var * n / (n - 1) '
                    "into the running variance (PyTorch), 'biased' the batch's variance (flax, Keras).")
  return value == 'unbiased'


def recompute_bn(value: str) -> bool | None:
  """`config.model.recompute_bn` as a choice: None (auto: the runtime's rule), True, False."""
  choices = {'auto': None, 'on': True, 'off': False}
  if value not in choices:
    raise UserError(f'--config.model.recompute_bn={value!r} is not one of {", ".join(choices)}: '
                    "'auto' recomputes BatchNorm's normalised values in the backward pass on CPU "
                    "(where it was measured faster), 'on'/'off' everywhere.")
  return choices[value]


def create_state(config: ml_collections.ConfigDict, model: nn.Module,
                 image_shape: tuple[int, int, int], steps_per_epoch: int,
                 ) -> tuple[TrainState, optax.Schedule, jax.Array]:
  """(initial state, learning-rate schedule, dropout key), all derived from `config.seed`."""
  total_steps = durations.total_steps(config, steps_per_epoch)
  schedule = optim.create_schedule(config.optim, steps_per_epoch, total_steps, config.batch_size)
  tx = optim.create_optimizer(config.optim, schedule, parallel.step_axis_name(config.parallel))
  init_rng, dropout_rng = jax.random.split(jax.random.key(config.seed))
  state = create_train_state(model, tx, init_rng, image_shape, ema=bool(config.optim.ema_decay))
  return state, schedule, dropout_rng
