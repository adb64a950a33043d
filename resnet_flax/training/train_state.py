"""TrainState with the BatchNorm running statistics beside the params."""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state


class TrainState(train_state.TrainState):
  batch_stats: Any
  ema: Any = None  # {'params', 'batch_stats'} moving averages when optim.ema_decay > 0


def with_ema(state: TrainState) -> TrainState:
  """`state` with its moving averages started at its current weights."""
  return state.replace(ema=jax.tree.map(jnp.copy, {'params': state.params,
                                                   'batch_stats': state.batch_stats}))


def create_train_state(model: nn.Module, tx: optax.GradientTransformation, rng: jax.Array,
                       image_shape: tuple[int, ...], ema: bool = False) -> TrainState:
  """Initialises params and BN statistics in one jitted call (unjitted init is slow on CPU).

  Compiled without XLA's backend optimisations: it runs once, and its optimised compile was
  most of the start-up (benchmarks/NOTES.md). The values are the same draws (last-bit
  differences in some float conversions), and equally deterministic.
  """
  def init(rng):
    variables = model.init(rng, jnp.zeros((1, *image_shape), jnp.float32), train=False)
    state = TrainState.create(apply_fn=model.apply, params=variables['params'], tx=tx,
                              batch_stats=variables.get('batch_stats', {}))
    return with_ema(state) if ema else state
  if isinstance(rng, jax.core.Tracer):  # under eval_shape or jit: options belong to the outer jit
    return jax.jit(init)(rng)
  return jax.jit(init, compiler_options={'xla_backend_optimization_level': 0})(rng)
