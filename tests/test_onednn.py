"""cpu.onednn and cpu.backend: the op builds here, is deterministic, gives a model the same
gradients as XLA's convs; the backend choice and its errors."""

import platform
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from resnet_flax.training import build
from resnet_flax.errors import UserError
from resnet_flax.cpu import backend, onednn, runtime
from tests.conftest import small_config
from tests.test_conv_impls import NATIVE_BF16, assert_close

pytestmark = pytest.mark.skipif(
    sys.platform != 'linux' or platform.machine() != 'x86_64',
    reason='the oneDNN wheels are x86-64 Linux only')


def test_onednn_is_available_where_requirements_install_it():
  # Otherwise 'auto' would quietly train with XLA's convs here and CI would test only those.
  assert onednn.unavailable() is None
  assert onednn.load().startswith('3.')


@pytest.mark.parametrize('dtype', [jnp.float32, pytest.param(jnp.bfloat16, marks=NATIVE_BF16)])
def test_same_inputs_give_bit_identical_gradients(dtype):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((8, 16, 16, 16)), dtype)
  w = jnp.asarray(rng.standard_normal((3, 3, 16, 32)), dtype)
  grad = jax.jit(jax.grad(lambda x, w: jnp.sum(jnp.sin(
      onednn.conv(x, w, (2, 2), ((1, 1),) * 2).astype(jnp.float32))), argnums=(0, 1)))
  first, again = grad(x, w), grad(x, w)
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a, b)


def _loss_and_grads(conv_backend, **overrides):
  config = small_config(**overrides)
  config.model.conv_backend = conv_backend
  model = build.create_model(config.model, 10, parts=runtime.model_parts(config.model))
  variables = model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)), train=False)
  images = jax.random.normal(jax.random.key(1), (4, 16, 16, 3))

  def loss(params):
    logits, _ = model.apply({**variables, 'params': params}, images, train=True,
                            mutable=['batch_stats'])
    return jnp.mean(jax.nn.log_softmax(logits)[:, 0])
  return jax.jit(jax.value_and_grad(loss))(variables['params'])


@pytest.mark.slow
@pytest.mark.parametrize('scan', [False, True])
def test_a_resnet_has_the_same_loss_and_gradients_on_either_backend(scan):
  overrides = {'model.scan_blocks': 'on' if scan else 'off', 'model.name': 'resnet20' if scan else 'resnet8'}
  (loss_xla, grads_xla), (loss_dnn, grads_dnn) = (
      _loss_and_grads(name, **overrides) for name in ('xla', 'onednn'))
  np.testing.assert_allclose(loss_dnn, loss_xla, rtol=1e-5)
  jax.tree.map(lambda a, b: assert_close(a, b, 1e-4), grads_dnn, grads_xla)


@NATIVE_BF16
def test_a_bfloat16_resnet_on_onednn_follows_its_float32_gradients():
  """bfloat16 is ~3 significant digits, so the check is the direction of every gradient (a wrong
  kernel layout gives ~0) and the loss to bfloat16 precision; XLA's bfloat16 convs reach the same
  (cosines 0.98-0.99 for ResNet-8 here)."""
  overrides = {'model.name': 'resnet8'}
  loss32, grads32 = _loss_and_grads('xla', **overrides)
  loss16, grads16 = _loss_and_grads('onednn', **overrides, **{'model.dtype': 'bfloat16'})
  np.testing.assert_allclose(loss16, loss32, rtol=5e-3)

  def cosine(a, b):
    a, b = np.asarray(a, np.float32).ravel(), np.asarray(b, np.float32).ravel()
    return np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b)
  assert min(jax.tree.leaves(jax.tree.map(cosine, grads16, grads32))) > 0.95


def test_auto_takes_onednn_on_one_cpu_device_in_float32(monkeypatch):
  assert jax.device_count() == 1  # conftest
  name, why = backend.resolve(small_config().model)
  assert name == 'onednn' and 'auto' in why and 'oneDNN 3.' in why
  bf16 = small_config(**{'model.dtype': 'bfloat16'}).model
  for native in (True, False):  # bfloat16: oneDNN only where the CPU computes it
    monkeypatch.setattr(onednn, 'native_bfloat16', lambda native=native: native)
    name, why = backend.resolve(bf16)
    assert name == ('onednn' if native else 'xla'), why
    assert backend.onednn_wanted(bf16) == native
  assert 'AMX' in why or 'amx_bf16' in why
  name, why = backend.resolve(small_config(**{'model.dtype': 'float16'}).model)
  assert name == 'xla' and 'float32 or bfloat16' in why
  assert backend.resolve(small_config(**{'model.conv_backend': 'xla'}).model)[0] == 'xla'
  name, why = backend.resolve(small_config().model, sharded_jit=True)
  assert name == 'xla' and 'gather' in why


@pytest.mark.parametrize('overrides,sharded,match', [
    ({'model.conv_backend': 'mkl'}, False, "'mkl' is not a conv backend"),
    ({'model.conv_backend': 'onednn', 'model.dtype': 'float16'}, False, 'float32 or bfloat16'),
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


def test_explicit_onednn_in_bfloat16_without_the_cpu_support_says_so(monkeypatch):
  monkeypatch.setattr(onednn, 'native_bfloat16', lambda: False)
  config = small_config(**{'model.conv_backend': 'onednn', 'model.dtype': 'bfloat16'})
  with pytest.raises(UserError, match='no bfloat16 arithmetic') as error:
    backend.resolve(config.model)
  assert '--config.model.conv_backend' in str(error.value)


def test_mixed_dtypes_are_refused_before_reaching_the_op():
  x, w = jnp.zeros((1, 4, 4, 2), jnp.float32), jnp.zeros((3, 3, 2, 2), jnp.bfloat16)
  with pytest.raises(TypeError, match='one dtype'):
    onednn.conv(x, w, (1, 1), ((1, 1), (1, 1)))
