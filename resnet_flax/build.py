"""Model and train state from a config: shared by training, evaluation and prediction."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from resnet_flax import durations, models, optim, parallel
from resnet_flax.errors import UserError
from resnet_flax.ops import backend
from resnet_flax.train_state import TrainState, create_train_state


def create_model(cfg: ml_collections.ConfigDict, num_classes: int,
                 bn_axis_name: str | None = None, conv_backend: str | None = None) -> nn.Module:
  """The model that `config.model` describes; `bn_axis_name`: see parallel.bn_axis_name;
  `conv_backend` 'xla'/'onednn' (None: ops.backend.resolve of `cfg`, on one device)."""
  block_options = {k: cfg[k] for k in ('dropout_rate', 'zero_init_last_bn') if cfg[k]}
  overrides = {'bn_axis_name': bn_axis_name} if bn_axis_name else {}
  return models.create_model(cfg.name, num_classes=num_classes, dtype=jnp.dtype(cfg.dtype),
                             bn_momentum=cfg.bn_momentum, bn_epsilon=cfg.bn_epsilon,
                             scan_blocks=cfg.scan_blocks, block_options=block_options,
                             recompute_bn=recompute_bn(cfg.get('recompute_bn', 'auto')),
                             conv_backend=conv_backend or backend.resolve(cfg)[0], **overrides)


def recompute_bn(value: str) -> bool | None:
  """`config.model.recompute_bn` as ResNet's field: None (auto, the model's rule), True, False."""
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
