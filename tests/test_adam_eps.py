"""optim.adam_eps_placement='raw' is Keras's Adam, step for step (real Keras, float64).

Keras's update (keras/src/optimizers/adam.py, update_step) agrees with ours to rounding in
float64 (with floatx float64, so that its learning-rate variable is float64 too), its float32
bias-correction betas included. With small gradients the placement of eps changes the steps
by factors, which the test also tells apart.
"""

import numpy as np
import pytest

from configs import default
from resnet_flax.training import optim


def _ours(placement, grads, start, lr=1e-3, eps=1e-7):
  cfg = default.get_config().optim
  cfg.optimizer, cfg.weight_decay, cfg.adam_eps, cfg.adam_eps_placement = 'adam', 0.0, eps, placement
  tx = optim.create_optimizer(cfg, lambda step: lr)
  params, state = start, tx.init(start)
  for g in grads:
    updates, state = tx.update(g, state, params)
    params = params + updates
  return np.asarray(params)


def _keras(grads, start, lr=1e-3, eps=1e-7):
  keras = pytest.importorskip('keras')
  floatx = keras.config.floatx()
  keras.config.set_floatx('float64')  # a float64 learning-rate variable, as a float64 run has
  try:
    variable = keras.Variable(start, dtype='float64')
    adam = keras.optimizers.Adam(learning_rate=lr, epsilon=eps)
    for g in grads:
      adam.apply_gradients([(keras.ops.convert_to_tensor(g, 'float64'), variable)])
    return np.asarray(variable.numpy())
  finally:
    keras.config.set_floatx(floatx)


@pytest.mark.slow  # imports TensorFlow and Keras
def test_raw_eps_placement_is_keras_adam():
  import jax
  rng = np.random.default_rng(0)
  # small gradients, where the placement of eps matters most
  grads = [rng.standard_normal(6) * 1e-6 for _ in range(20)]
  start = rng.standard_normal(6)
  with jax.enable_x64(True):
    ours_raw = _ours('raw', [jax.numpy.asarray(g) for g in grads], jax.numpy.asarray(start))
    ours_corrected = _ours('corrected', [jax.numpy.asarray(g) for g in grads],
                           jax.numpy.asarray(start))
  theirs = _keras(grads, start)
  np.testing.assert_allclose(ours_raw - start, theirs - start, rtol=1e-12)
  assert np.max(np.abs((ours_corrected - start) / (theirs - start) - 1)) > 0.1
