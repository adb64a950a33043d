"""ops.onednn and ops.backend: the op builds here, is deterministic, gives a model the same
gradients as XLA's convs; the backend choice and its errors."""

import platform
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from resnet_flax import build
from resnet_flax.errors import UserError
from resnet_flax.ops import backend, onednn
from tests.conftest import small_config
from tests.test_conv_impls import assert_close

pytestmark = pytest.mark.skipif(
    sys.platform != 'linux' or platform.machine() != 'x86_64',
    reason='the oneDNN wheels are x86-64 Linux only')


def test_onednn_is_available_where_requirements_install_it():
  # Otherwise 'auto' would quietly train with XLA's convs here and CI would test only those.
  assert onednn.unavailable() is None
  assert onednn.load().startswith('3.')


def test_same_inputs_give_bit_identical_gradients():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((8, 16, 16, 16)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((3, 3, 16, 32)), jnp.float32)
  grad = jax.jit(jax.grad(lambda x, w: jnp.sum(jnp.sin(onednn.conv(x, w, (2, 2), ((1, 1),) * 2))),
                          argnums=(0, 1)))
  first, again = grad(x, w), grad(x, w)
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a, b)


def _loss_and_grads(conv_backend, **overrides):
  config = small_config(**overrides)
  model = build.create_model(config.model, 10, conv_backend=conv_backend)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)), train=False)
  images = jax.random.normal(jax.random.key(1), (4, 16, 16, 3))

  def loss(params):
    logits, _ = model.apply({**variables, 'params': params}, images, train=True,
                            mutable=['batch_stats'])
    return jnp.mean(jax.nn.log_softmax(logits)[:, 0])
  return jax.jit(jax.value_and_grad(loss))(variables['params'])


@pytest.mark.parametrize('scan', [False, True])
def test_a_resnet_has_the_same_loss_and_gradients_on_either_backend(scan):
  overrides = {'model.scan_blocks': scan, 'model.name': 'resnet20' if scan else 'resnet8'}
  (loss_xla, grads_xla), (loss_dnn, grads_dnn) = (
      _loss_and_grads(name, **overrides) for name in ('xla', 'onednn'))
  np.testing.assert_allclose(loss_dnn, loss_xla, rtol=1e-5)
  jax.tree.map(lambda a, b: assert_close(a, b, 1e-4), grads_dnn, grads_xla)


def test_auto_takes_onednn_on_one_cpu_device_in_float32():
  assert jax.device_count() == 1  # conftest
  name, why = backend.resolve(small_config().model)
  assert name == 'onednn' and 'auto' in why and 'oneDNN 3.' in why
  name, why = backend.resolve(small_config(**{'model.dtype': 'bfloat16'}).model)
  assert name == 'xla' and 'float32' in why
  assert backend.resolve(small_config(**{'model.conv_backend': 'xla'}).model)[0] == 'xla'
  name, why = backend.resolve(small_config().model, sharded_jit=True)
  assert name == 'xla' and 'gather' in why


@pytest.mark.parametrize('overrides,sharded,match', [
    ({'model.conv_backend': 'mkl'}, False, "'mkl' is not a conv backend"),
    ({'model.conv_backend': 'onednn', 'model.dtype': 'bfloat16'}, False, 'float32'),
    ({'model.conv_backend': 'onednn'}, True, 'gather'),
])
def test_backend_choices_that_cannot_run_say_what_to_do(overrides, sharded, match):
  with pytest.raises(UserError, match=match) as error:
    backend.resolve(small_config(**overrides).model, sharded_jit=sharded)
  assert '--config.model.conv_backend' in str(error.value)


def test_a_failing_build_is_a_user_error_with_the_compiler_output(tmp_path, monkeypatch):
  monkeypatch.setenv('RESNET_FLAX_OPS_CACHE', str(tmp_path))
  (tmp_path / 'cxx').write_text('#!/bin/sh\necho "fatal: no headers" >&2\nexit 1\n')
  (tmp_path / 'cxx').chmod(0o755)
  monkeypatch.setenv('CXX', str(tmp_path / 'cxx'))
  with pytest.raises(UserError, match='fatal: no headers') as error:
    onednn._library_path()  # pylint: disable=protected-access
  assert 'conv_backend=xla' in str(error.value)
  assert not list(tmp_path.glob('*.so'))  # nothing half-built is left to load later
  monkeypatch.setenv('CXX', str(tmp_path / 'missing-g++'))
  assert 'no C++ compiler' in onednn.unavailable()
