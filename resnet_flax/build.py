"""Model and train state from a config: shared by training, evaluation and prediction."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from resnet_flax import models, optim
from resnet_flax.train_state import TrainState, create_train_state


def create_model(cfg: ml_collections.ConfigDict, num_classes: int) -> nn.Module:
  """The model that `config.model` describes."""
  block_options = {k: cfg[k] for k in ('dropout_rate', 'zero_init_last_bn') if cfg[k]}
  return models.create_model(cfg.name, num_classes=num_classes, dtype=jnp.dtype(cfg.dtype),
                             bn_momentum=cfg.bn_momentum, bn_epsilon=cfg.bn_epsilon,
                             scan_blocks=cfg.scan_blocks, block_options=block_options)


def create_state(config: ml_collections.ConfigDict, model: nn.Module,
                 image_shape: tuple[int, int, int], steps_per_epoch: int,
                 ) -> tuple[TrainState, optax.Schedule, jax.Array]:
  """(initial state, learning-rate schedule, dropout key), all derived from `config.seed`."""
  total_steps = config.num_epochs * steps_per_epoch
  schedule = optim.create_schedule(config.optim, steps_per_epoch, total_steps)
  tx = optim.create_optimizer(config.optim, schedule)
  init_rng, dropout_rng = jax.random.split(jax.random.key(config.seed))
  return create_train_state(model, tx, init_rng, image_shape), schedule, dropout_rng
