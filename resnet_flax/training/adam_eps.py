"""Adam with Keras's epsilon: added to the square root of the raw second moment.

PyTorch and optax divide the bias-corrected first moment by sqrt(v / (1 - b2^t)) + eps; Keras
(keras.optimizers.Adam, and TF's before it) takes one step of
lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps), which is the same up to an epsilon of
eps / sqrt(1 - b2^t): about 30x larger at the first step for b2 = 0.999, tending to eps.
Keras also rounds b1 and b2 to float32 in its bias corrections (`ops.cast` of a Python float goes
through float32, even for float64 variables); ours does the same, so float64 runs agree.
`config.optim.adam_eps_placement='raw'` picks this one, to port Keras recipes.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax


def scale_by_adam_raw_eps(b1: float = 0.9, b2: float = 0.999,
                          eps: float = 1e-7) -> optax.GradientTransformation:
  """optax.scale_by_adam's moments and state layout, with Keras's update."""
  base = optax.scale_by_adam(b1, b2)
  b1_keras, b2_keras = float(np.float32(b1)), float(np.float32(b2))  # Keras's bias corrections

  def update(updates, state, params=None):
    del params
    mu = jax.tree.map(lambda g, m: b1 * m + (1 - b1) * g, updates, state.mu)
    nu = jax.tree.map(lambda g, v: b2 * v + (1 - b2) * g * g, updates, state.nu)
    count = optax.safe_increment(state.count)
    t = count.astype(jnp.result_type(float))
    alpha = jnp.sqrt(1 - b2_keras ** t) / (1 - b1_keras ** t)
    new = jax.tree.map(lambda m, v: (alpha * m / (jnp.sqrt(v) + eps)).astype(m.dtype), mu, nu)
    return new, optax.ScaleByAdamState(count=count, mu=mu, nu=nu)

  return optax.GradientTransformation(base.init, update)
