"""Models: exact parameter counts, shapes, BatchNorm behaviour, registry errors."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from resnet_flax.errors import UserError
from resnet_flax.models import create_model, list_models
from resnet_flax.models.layers import conv, relu

# ../shared/reference/cifar_results.md: learnable params (BN scale/bias included).
PARAM_COUNTS = [
    ('resnet20', 10, 269_722), ('resnet20', 100, 275_572), ('resnet20_b', 10, 272_474),
    ('resnet32', 10, 464_154), ('resnet32', 100, 470_004),
    ('resnet44', 10, 658_586), ('resnet44', 100, 664_436),
    ('resnet56', 10, 853_018), ('resnet56', 100, 858_868),
    ('resnet110', 10, 1_727_962), ('resnet110', 100, 1_733_812),
    ('resnet1202', 10, 19_421_274), ('resnet1202', 100, 19_427_124),
]


def abstract_variables(model, shape=(1, 32, 32, 3)):
  return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape), train=False))


def count(tree):
  return sum(x.size for x in jax.tree.leaves(tree))


@pytest.mark.parametrize('name,classes,expected', PARAM_COUNTS)
def test_param_count_matches_published(name, classes, expected):
  variables = abstract_variables(create_model(name, num_classes=classes))
  assert count(variables['params']) == expected


def test_forward_shapes_and_dtypes():
  model = create_model('resnet20', num_classes=10)
  x = jnp.ones((2, 32, 32, 3))
  variables = model.init(jax.random.key(0), x, train=False)
  logits = model.apply(variables, x, train=False)
  assert logits.shape == (2, 10) and logits.dtype == jnp.float32
  bf16 = create_model('resnet20', num_classes=10, dtype=jnp.bfloat16)
  assert bf16.apply(variables, x, train=False).dtype == jnp.float32
  assert set(variables) == {'params', 'batch_stats'}


def test_stage_resolution_and_width():
  """Stage outputs are 32x32x16, 16x16x32, 8x8x64 (He et al. section 4.2)."""
  model = create_model('resnet20', num_classes=10)
  x = jnp.ones((1, 32, 32, 3))
  variables = model.init(jax.random.key(0), x, train=False)
  _, state = model.apply(variables, x, train=False, capture_intermediates=True, mutable=True)
  shapes = {k: v['__call__'][0].shape for k, v in state['intermediates'].items()
            if k.endswith('block3')}
  assert shapes == {'stage1_block3': (1, 32, 32, 16), 'stage2_block3': (1, 16, 16, 32),
                    'stage3_block3': (1, 8, 8, 64)}


def test_batch_stats_update_in_train_mode_only():
  model = create_model('resnet20', num_classes=10)
  x = jax.random.normal(jax.random.key(1), (8, 32, 32, 3)) * 3 + 1
  variables = model.init(jax.random.key(0), x, train=False)
  _, updates = model.apply(variables, x, train=True, mutable=['batch_stats'])
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), variables['batch_stats'],
                         updates['batch_stats'])
  assert all(jax.tree.leaves(changed))
  _, frozen = model.apply(variables, x, train=False, mutable=['batch_stats'])
  jax.tree.map(np.testing.assert_array_equal, variables['batch_stats'], frozen['batch_stats'])


def test_eval_output_is_independent_of_the_rest_of_the_batch():
  """Eval mode uses running statistics: an image's logits do not depend on its batch mates."""
  model = create_model('resnet20', num_classes=10)
  x = jax.random.normal(jax.random.key(1), (4, 32, 32, 3))
  variables = model.init(jax.random.key(0), x, train=False)
  full = model.apply(variables, x, train=False)
  single = model.apply(variables, x[:1], train=False)
  np.testing.assert_allclose(full[:1], single, rtol=1e-5, atol=1e-6)


def test_stride2_conv_pads_symmetrically_like_pytorch():
  """A 3x3 stride-2 conv on 4x4 input samples centres at rows/cols 0 and 2 (PyTorch padding=1)."""
  layer = conv(1, 3, strides=2)
  x = jnp.arange(16.0).reshape(1, 4, 4, 1)
  kernel = jnp.zeros((3, 3, 1, 1)).at[1, 1, 0, 0].set(1.0)  # picks the centre pixel
  y = layer.apply({'params': {'kernel': kernel}}, x)
  np.testing.assert_array_equal(y[0, :, :, 0], x[0, ::2, ::2, 0])


def test_option_a_shortcut_pads_channels_equally():
  from resnet_flax.models.resnet import ShortcutA
  x = jnp.arange(2 * 4 * 4 * 16, dtype=jnp.float32).reshape(2, 4, 4, 16)
  y = ShortcutA(32, 2, norm=None).apply({}, x)
  assert y.shape == (2, 2, 2, 32)
  np.testing.assert_array_equal(y[..., 8:24], x[:, ::2, ::2, :])
  assert not jnp.any(y[..., :8]) and not jnp.any(y[..., 24:])


def test_relu_matches_nn_relu_in_value_and_gradient():
  x = jnp.array([-2.0, -0.0, 0.0, 1e-30, 3.0])
  np.testing.assert_array_equal(relu(x), nn.relu(x))
  grad = jax.grad(lambda v: jnp.sum(relu(v) * jnp.arange(5.0)))(x)
  ref = jax.grad(lambda v: jnp.sum(nn.relu(v) * jnp.arange(5.0)))(x)
  np.testing.assert_array_equal(grad, ref)


def test_registry_errors_are_clear():
  assert {'resnet20', 'resnet110', 'resnet20_b'} <= set(list_models())
  with pytest.raises(UserError, match=r"Unknown model 'resnet21'. Did you mean .*'resnet20'"):
    create_model('resnet21', num_classes=10)
  with pytest.raises(UserError, match='no field.*widht'):
    create_model('resnet20', num_classes=10, widht=3)
