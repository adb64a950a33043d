"""`ResNet(scan_blocks=True)`: same function as the unrolled net once variables are converted."""

import functools

import jax
import numpy as np
import optax
import pytest

from resnet_flax.models import create_model
from resnet_flax.models.scan_layout import to_scanned, to_unscanned

MODELS = [
    pytest.param('resnet20', {}, id='resnet20'),
    pytest.param('resnet20_b', {}, id='resnet20_b', marks=pytest.mark.slow),
    # Pre-activation bottleneck-free CIFAR net cut to 3/1/2 blocks: a 1-block stage scans nothing.
    pytest.param('preact_resnet110', {'stage_sizes': (3, 1, 2)}, id='preact_resnet110'),
    pytest.param('wrn16_4', {'block_options': {'dropout_rate': 0.0}}, id='wrn16_4',
                 marks=pytest.mark.slow),
]


def _inputs():
  rng = np.random.default_rng(1)
  return rng.standard_normal((2, 32, 32, 3), np.float32), np.array([3, 7])


def _random_variables(model, images):
  """Variables in the model's layout, drawn with numpy: no init compile (seconds per model).

  Running statistics are non-trivial, so eval mode reads every stacked mean and var.
  """
  abstract = jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0), images)
  rng = np.random.default_rng(0)

  def draw(path, x):
    kind = path[-1].key
    if kind == 'kernel':
      return rng.normal(0, (2 / np.prod(x.shape[:-1])) ** 0.5, x.shape).astype(x.dtype)
    if kind in ('scale', 'var'):
      return rng.uniform(0.5, 1.5, x.shape).astype(x.dtype)
    return rng.normal(0, 0.1, x.shape).astype(x.dtype)  # bias, mean

  return jax.tree_util.tree_map_with_path(draw, abstract)


def _outputs(model, variables, images, labels):
  """Eval logits, train logits, updated BN statistics and loss gradients, in one compile."""
  def loss_fn(params):
    logits, state = model.apply({**variables, 'params': params}, images, train=True,
                                mutable=['batch_stats'])
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, (logits, state['batch_stats'])

  (_, (logits, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(variables['params'])
  return model.apply(variables, images, train=False), logits, stats, grads


def _assert_trees_close(actual, expected):
  assert jax.tree.structure(actual) == jax.tree.structure(expected)
  for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
    np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)


def _count(tree):
  return sum(x.size for x in jax.tree.leaves(tree))


@pytest.mark.slow
@pytest.mark.parametrize('name,overrides', MODELS)
def test_scanned_matches_unrolled(name, overrides):
  # Measured: eval and train logits are bit-identical; BN statistics and gradients differ by
  # float32 rounding (below 1e-6: XLA orders the backward reductions differently in the loop).
  unrolled = create_model(name, num_classes=10, **overrides)
  scanned = create_model(name, num_classes=10, scan_blocks=True, **overrides)
  sizes = unrolled.stage_sizes
  images, labels = _inputs()
  variables = _random_variables(unrolled, images)
  converted = to_scanned(variables, sizes)

  # A scanned init has exactly the converted layout: stacked shapes, same parameter count.
  abstract = jax.eval_shape(functools.partial(scanned.init, train=False), jax.random.key(0), images)
  shapes = functools.partial(jax.tree.map, lambda x: (x.shape, x.dtype))
  assert shapes(abstract) == shapes(converted)
  assert _count(abstract['params']) == _count(variables['params'])
  for i, n in enumerate(sizes, 1):
    assert (f'stage{i}_blocks' in abstract['params']) == (n > 1)
    assert f'stage{i}_block2' not in abstract['params']
  first_kernel = abstract['params']['stage1_blocks']['conv1']['kernel']
  unrolled_kernel = variables['params']['stage1_block2']['conv1']['kernel']
  assert first_kernel.shape == (sizes[0] - 1, *unrolled_kernel.shape)

  expected = jax.jit(functools.partial(_outputs, unrolled))(variables, images, labels)
  eval_logits, train_logits, stats, grads = jax.jit(functools.partial(_outputs, scanned))(
      converted, images, labels)
  np.testing.assert_allclose(eval_logits, expected[0], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(train_logits, expected[1], rtol=1e-5, atol=1e-5)
  back = to_unscanned({'batch_stats': stats, 'params': grads}, sizes)
  _assert_trees_close(back['batch_stats'], expected[2])
  _assert_trees_close(back['params'], expected[3])


def test_round_trip_is_exact():
  model = create_model('resnet20_b', num_classes=10)
  variables = _random_variables(model, _inputs()[0])  # numpy float32
  on_device = jax.device_put(variables)
  as_float64 = jax.tree.map(lambda x: x.astype(np.float64), variables)
  for tree in (variables, on_device, as_float64):
    back = to_unscanned(to_scanned(tree, (3, 3, 3)), (3, 3, 3))
    assert jax.tree.structure(back) == jax.tree.structure(tree)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(tree)):
      assert type(a) is type(b) and a.dtype == b.dtype and np.array_equal(a, b)


def test_layout_errors():
  variables = {'params': {'stage1_block1': {}, 'stage1_block2': {'w': np.zeros(2)}}}
  with pytest.raises(ValueError, match='stage1_block3'):
    to_scanned(variables, (3,))
  stacked = {'params': {'stage1_blocks': {'w': np.zeros((2, 2))}}}
  with pytest.raises(ValueError, match='expected 3'):
    to_unscanned(stacked, (4,))


@pytest.mark.slow
def test_scanned_dropout_uses_static_train_flag():
  """Dropout inside the scanned body switches on with train=True and follows the 'dropout' rng."""
  model = create_model('wrn16_4', num_classes=10, widths=(4, 8, 16), scan_blocks=True,
                       block_options={'dropout_rate': 0.5})
  images, _ = _inputs()
  variables = _random_variables(model, images)

  @jax.jit
  def logits(seeds):
    train = [model.apply(variables, images, train=True, mutable=['batch_stats'],
                         rngs={'dropout': jax.random.key(s)})[0] for s in seeds]
    return train, model.apply(variables, images, train=False)

  (a, b, c), eval_logits = logits((0, 0, 1))
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c) and not np.allclose(a, eval_logits)


def test_summary_counts_every_scanned_block():
  from resnet_flax.models import create_model, summarize
  plain = summarize(create_model('resnet110', num_classes=10), (32, 32, 3))
  scanned = summarize(create_model('resnet110', num_classes=10, scan_blocks=True), (32, 32, 3))
  assert scanned == plain and round(plain.macs / 1e6, 2) == 252.89
