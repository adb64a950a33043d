"""Schedules equal their formulas; weight decay is coupled like torch.optim.SGD."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import default
from resnet_flax import optim
from resnet_flax.errors import UserError


def optim_config(**overrides):
  cfg = default.get_config().optim
  cfg.update(overrides)
  return cfg


def test_step_schedule_divides_at_milestones():
  cfg = optim_config(schedule='step', milestones=(82, 123), learning_rate=0.1)
  lr = optim.create_schedule(cfg, steps_per_epoch=390, total_steps=164 * 390)
  assert lr(0) == pytest.approx(0.1)
  assert lr(82 * 390 - 1) == pytest.approx(0.1)
  assert lr(82 * 390) == pytest.approx(0.01)
  assert lr(123 * 390) == pytest.approx(0.001)


def test_cosine_with_warmup():
  cfg = optim_config(schedule='cosine', learning_rate=0.2, warmup_epochs=1.0)
  lr = optim.create_schedule(cfg, steps_per_epoch=10, total_steps=110)
  assert lr(0) == pytest.approx(0.0)
  assert lr(5) == pytest.approx(0.1)
  assert lr(10) == pytest.approx(0.2)
  assert lr(60) == pytest.approx(0.1)  # half-way through the cosine part
  assert lr(110) == pytest.approx(0.0, abs=1e-7)


def test_sgd_matches_torch_update_rule():
  """torch: g += wd * p; buf = m * buf + g; p -= lr * buf."""
  cfg = optim_config(learning_rate=0.1, momentum=0.9, weight_decay=0.01, schedule='constant')
  tx = optim.create_optimizer(cfg, optim.create_schedule(cfg, 1, 1))
  p = {'kernel': jnp.array([1.0, -2.0])}
  state = tx.init(p)
  p_ref, buf = np.array([1.0, -2.0]), np.zeros(2)
  for g in ([0.5, 0.5], [-1.0, 0.25]):
    updates, state = tx.update({'kernel': jnp.array(g)}, state, p)
    p = optax.apply_updates(p, updates)
    buf = 0.9 * buf + (np.array(g) + 0.01 * p_ref)
    p_ref = p_ref - 0.1 * buf
    np.testing.assert_allclose(p['kernel'], p_ref, rtol=1e-6)


def test_kernels_only_decay_mask():
  cfg = optim_config(weight_decay=0.5, momentum=0.0, learning_rate=1.0, schedule='constant',
                     decay_bn_and_bias=False)
  tx = optim.create_optimizer(cfg, optim.create_schedule(cfg, 1, 1))
  params = {'conv': {'kernel': jnp.ones(2)}, 'bn': {'scale': jnp.ones(2), 'bias': jnp.ones(2)}}
  zero = {'conv': {'kernel': jnp.zeros(2)}, 'bn': {'scale': jnp.zeros(2), 'bias': jnp.zeros(2)}}
  updates, _ = tx.update(zero, tx.init(params), params)
  np.testing.assert_allclose(updates['conv']['kernel'], -0.5)
  np.testing.assert_allclose(updates['bn']['scale'], 0.0)


def test_unknown_names_are_user_errors():
  with pytest.raises(UserError, match='schedule'):
    optim.create_schedule(optim_config(schedule='linear'), 1, 1)
  with pytest.raises(UserError, match='optimizer'):
    optim.create_optimizer(optim_config(optimizer='adamw'), optax.constant_schedule(0.1))
