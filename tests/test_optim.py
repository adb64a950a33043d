"""Schedules equal their formulas at their milestones; optimizers and weight decay follow the
torch update rules written out in numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import default
from resnet_flax.training import optim
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
    optim.create_optimizer(optim_config(optimizer='rmsprop'), optax.constant_schedule(0.1))


def test_step_schedule_milestones_in_steps_after_warmup():
  cfg = optim_config(schedule='step', milestones=(100, 150), milestones_unit='steps',
                     learning_rate=0.1, warmup_epochs=1.0)
  lr = optim.create_schedule(cfg, steps_per_epoch=10, total_steps=200)
  assert lr(0) == pytest.approx(0.0)
  assert lr(5) == pytest.approx(0.05)
  assert lr(10) == pytest.approx(0.1)
  assert lr(99) == pytest.approx(0.1)
  assert lr(100) == pytest.approx(0.01)
  assert lr(149) == pytest.approx(0.01)
  assert lr(150) == pytest.approx(0.001)


def test_constant_and_exponential_with_warmup():
  cfg = optim_config(schedule='constant', learning_rate=0.2, warmup_epochs=2.0)
  lr = optim.create_schedule(cfg, steps_per_epoch=5, total_steps=100)
  assert [float(lr(t)) for t in (0, 5, 10, 99)] == pytest.approx([0.0, 0.1, 0.2, 0.2])
  cfg = optim_config(schedule='exponential', learning_rate=0.2, warmup_epochs=2.0,
                     decay_factor=0.5, decay_every_epochs=1.0)
  lr = optim.create_schedule(cfg, steps_per_epoch=5, total_steps=100)
  for t in (10, 14, 15, 19, 20, 37):
    assert lr(t) == pytest.approx(0.2 * 0.5 ** ((t - 10) // 5))


@pytest.mark.parametrize('warmup', [0, 400])
def test_he2016_divides_at_32k_and_48k(warmup):
  cfg = optim_config(schedule='he2016', learning_rate=0.1, he_warmup_steps=warmup)
  lr = optim.create_schedule(cfg, steps_per_epoch=391, total_steps=64000)
  first = 0.01 if warmup else 0.1
  assert lr(0) == pytest.approx(first)
  assert lr(399) == pytest.approx(first)
  assert lr(400) == pytest.approx(0.1)
  assert lr(31999) == pytest.approx(0.1)
  assert lr(32000) == pytest.approx(0.01)
  assert lr(47999) == pytest.approx(0.01)
  assert lr(48000) == pytest.approx(0.001)
  assert lr(63999) == pytest.approx(0.001)


def test_onecycle_rises_to_peak_then_anneals():
  cfg = optim_config(schedule='onecycle', learning_rate=0.1, onecycle_pct_start=0.25,
                     onecycle_div_factor=25.0, onecycle_final_div_factor=1e4)
  lr = optim.create_schedule(cfg, steps_per_epoch=10, total_steps=1000)
  assert lr(0) == pytest.approx(0.1 / 25)
  assert lr(125) == pytest.approx((0.1 / 25 + 0.1) / 2)  # half-way up the cosine
  assert lr(250) == pytest.approx(0.1)
  assert lr(249) < lr(250) > lr(251)
  assert lr(1000) == pytest.approx(0.1 / 25 / 1e4)


def _params():
  return {'conv': {'kernel': jnp.full((3, 3, 1, 2), 1.0)},
          'bn': {'scale': jnp.full((2,), 2.0), 'bias': jnp.full((2,), -1.0)}}


def _quadratic(params):
  return sum(jnp.sum((x - 0.5) ** 2) for x in jax.tree_util.tree_leaves(params))


@pytest.mark.parametrize('optimizer, mode', [
    ('sgd', 'coupled'), ('sgd', 'decoupled'), ('adam', 'coupled'), ('adam', 'decoupled'),
    ('adamw', 'decoupled'), ('lars', 'coupled')])
def test_every_optimizer_decreases_a_quadratic(optimizer, mode):
  cfg = optim_config(optimizer=optimizer, weight_decay_mode=mode, learning_rate=0.1,
                     schedule='constant', weight_decay=1e-3, clip_grad_norm=10.0)
  tx = optim.create_optimizer(cfg, optim.create_schedule(cfg, 1, 10))
  params = _params()
  state = tx.init(params)
  losses = [float(_quadratic(params))]
  for _ in range(5):
    updates, state = tx.update(jax.grad(_quadratic)(params), state, params)
    params = optax.apply_updates(params, updates)
    losses.append(float(_quadratic(params)))
  assert losses[-1] < losses[0]


def test_sgdw_matches_decoupled_update_rule():
  """buf = m * buf + g; p -= lr * (buf + wd * p)."""
  cfg = optim_config(learning_rate=0.1, momentum=0.9, weight_decay=0.01, schedule='constant',
                     weight_decay_mode='decoupled')
  tx = optim.create_optimizer(cfg, optim.create_schedule(cfg, 1, 1))
  p = {'kernel': jnp.array([1.0, -2.0])}
  state = tx.init(p)
  p_ref, buf = np.array([1.0, -2.0]), np.zeros(2)
  for g in ([0.5, 0.5], [-1.0, 0.25], [0.0, 3.0]):
    updates, state = tx.update({'kernel': jnp.array(g)}, state, p)
    p = optax.apply_updates(p, updates)
    buf = 0.9 * buf + np.array(g)
    p_ref = p_ref - 0.1 * (buf + 0.01 * p_ref)
    np.testing.assert_allclose(p['kernel'], p_ref, rtol=1e-6)


@pytest.mark.parametrize('optimizer', ['adam', 'adamw'])
def test_decoupled_adam_matches_numpy_adamw(optimizer):
  """torch.optim.AdamW: p -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * p)."""
  lr, wd, b1, b2, eps = 0.01, 0.1, 0.9, 0.999, 1e-8
  cfg = optim_config(optimizer=optimizer, weight_decay_mode='decoupled', learning_rate=lr,
                     weight_decay=wd, schedule='constant')
  tx = optim.create_optimizer(cfg, optim.create_schedule(cfg, 1, 1))
  p = {'kernel': jnp.array([1.0, -2.0])}
  state = tx.init(p)
  p_ref, m, v = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2)
  for t, g in enumerate(([0.5, 0.5], [-1.0, 0.25], [0.0, 3.0]), start=1):
    updates, state = tx.update({'kernel': jnp.array(g)}, state, p)
    p = optax.apply_updates(p, updates)
    g = np.array(g)
    m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g ** 2
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    p_ref = p_ref - lr * (m_hat / (np.sqrt(v_hat) + eps) + wd * p_ref)
    np.testing.assert_allclose(p['kernel'], p_ref, rtol=1e-5)


@pytest.mark.parametrize('optimizer, mode', [
    ('sgd', 'coupled'), ('sgd', 'decoupled'), ('adamw', 'decoupled')])
def test_mask_excludes_bn_and_bias_in_both_modes(optimizer, mode):
  cfg = optim_config(optimizer=optimizer, weight_decay_mode=mode, weight_decay=0.5, momentum=0.0,
                     learning_rate=0.1, schedule='constant', decay_bn_and_bias=False)
  tx = optim.create_optimizer(cfg, optim.create_schedule(cfg, 1, 1))
  params = _params()
  zero = jax.tree_util.tree_map(jnp.zeros_like, params)
  updates, _ = tx.update(zero, tx.init(params), params)
  np.testing.assert_allclose(updates['conv']['kernel'], -0.1 * 0.5 * 1.0, rtol=1e-6)
  np.testing.assert_allclose(updates['bn']['scale'], 0.0)
  np.testing.assert_allclose(updates['bn']['bias'], 0.0)


def test_clipping_caps_the_global_norm():
  cfg = optim_config(momentum=0.0, learning_rate=1.0, weight_decay=0.0, schedule='constant',
                     clip_grad_norm=1.0)
  tx = optim.create_optimizer(cfg, optim.create_schedule(cfg, 1, 1))
  params = {'kernel': jnp.zeros(1), 'bias': jnp.zeros(1)}
  state = tx.init(params)
  updates, state = tx.update({'kernel': jnp.array([3.0]), 'bias': jnp.array([4.0])}, state, params)
  np.testing.assert_allclose([updates['kernel'][0], updates['bias'][0]], [-0.6, -0.8], rtol=1e-6)
  updates, _ = tx.update({'kernel': jnp.array([0.3]), 'bias': jnp.array([0.4])}, state, params)
  np.testing.assert_allclose([updates['kernel'][0], updates['bias'][0]], [-0.3, -0.4], rtol=1e-6)


def test_lars_trust_ratio_skips_bn_and_bias():
  cfg = optim_config(optimizer='lars', learning_rate=1.0, weight_decay=0.0, momentum=0.9,
                     lars_trust_coefficient=0.001, schedule='constant')
  tx = optim.create_optimizer(cfg, optim.create_schedule(cfg, 1, 1))
  params = _params()
  grads = jax.tree_util.tree_map(lambda x: jnp.full_like(x, 2.0), params)
  updates, _ = tx.update(grads, tx.init(params), params)
  kernel, g = params['conv']['kernel'], grads['conv']['kernel']
  ratio = 0.001 * jnp.linalg.norm(kernel) / jnp.linalg.norm(g)
  np.testing.assert_allclose(updates['conv']['kernel'], -ratio * g, rtol=1e-5)
  np.testing.assert_allclose(updates['bn']['scale'], -2.0, rtol=1e-6)
  np.testing.assert_allclose(updates['bn']['bias'], -2.0, rtol=1e-6)


@pytest.mark.parametrize('overrides, field', [
    ({'schedule': 'step', 'milestones': (123, 82)}, 'milestones'),
    ({'schedule': 'step', 'milestones': (82, 82)}, 'milestones'),
    ({'schedule': 'step', 'milestones_unit': 'iterations'}, 'milestones_unit'),
    ({'schedule': 'step', 'milestones': (1, 5), 'warmup_epochs': 2.0}, 'milestones'),
    ({'schedule': 'he2016', 'he_milestones_steps': (48000, 32000)}, 'he_milestones_steps'),
    ({'schedule': 'he2016', 'he_warmup_steps': -1}, 'he_warmup_steps'),
    ({'schedule': 'he2016', 'warmup_epochs': 1.0}, 'warmup_epochs'),
    ({'schedule': 'onecycle', 'warmup_epochs': 1.0}, 'warmup_epochs'),
    ({'schedule': 'onecycle', 'onecycle_pct_start': 1.5}, 'onecycle_pct_start'),
    ({'schedule': 'onecycle', 'onecycle_div_factor': 0.0}, 'onecycle_div_factor'),
    ({'schedule': 'cosine', 'warmup_epochs': -1.0}, 'warmup_epochs'),
    ({'schedule': 'exponential', 'decay_every_epochs': 0.0}, 'decay_every_epochs'),
])
def test_inconsistent_schedules_are_user_errors(overrides, field):
  with pytest.raises(UserError, match=f'config.optim.{field}'):
    optim.create_schedule(optim_config(**overrides), steps_per_epoch=10, total_steps=1000)


@pytest.mark.parametrize('overrides, field', [
    ({'optimizer': 'adamw'}, 'weight_decay_mode'),  # adamw with the default 'coupled'
    ({'optimizer': 'lars', 'weight_decay_mode': 'decoupled'}, 'weight_decay_mode'),
    ({'weight_decay_mode': 'l2'}, 'weight_decay_mode'),
    ({'weight_decay': -1e-4}, 'weight_decay'),
    ({'clip_grad_norm': -1.0}, 'clip_grad_norm'),
    ({'momentum': -0.9}, 'momentum'),
])
def test_inconsistent_optimizers_are_user_errors(overrides, field):
  with pytest.raises(UserError, match=f'config.optim.{field}'):
    optim.create_optimizer(optim_config(**overrides), optax.constant_schedule(0.1))


def test_adamw_with_coupled_decay_points_to_adam():
  with pytest.raises(UserError, match="use optimizer 'adam' for coupled L2"):
    optim.create_optimizer(optim_config(optimizer='adamw'), optax.constant_schedule(0.1))


def test_label_smoothing_matches_its_formula():
  from resnet_flax.training.steps import cross_entropy
  logits = jnp.array([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
  labels = jnp.array([0, 2])
  logp = np.asarray(jax.nn.log_softmax(logits))
  targets = np.full((2, 3), 0.1 / 3) + 0.9 * np.eye(3)[[0, 2]]
  np.testing.assert_allclose(cross_entropy(logits, labels, 0.1), -(targets * logp).sum(-1),
                             rtol=1e-6)
  np.testing.assert_allclose(cross_entropy(logits, labels), -logp[[0, 1], [0, 2]], rtol=1e-6)
