"""The conv implementations a model can be built with (models.conv_vjp's hand-written backward,
cpu.onednn's oneDNN kernels): the same values and gradients as lax.conv_general_dilated, also
under scan; anything they do not cover goes to lax unchanged."""

import platform
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from resnet_flax.cpu import onednn
from resnet_flax.models import conv_vjp

# lax.conv_general_dilated's signature, as layers.conv_computed_by hands them to nn.Conv.
CONV_IMPLS = {'by_hand': conv_vjp.conv_general_dilated, 'onednn': onednn.conv_general_dilated}

IMPLS = pytest.mark.parametrize('impl', ['by_hand', pytest.param('onednn', marks=pytest.mark.skipif(
    sys.platform != 'linux' or platform.machine() != 'x86_64', reason='oneDNN: x86-64 Linux'))])

# oneDNN's bfloat16 convs: only on a CPU that computes bf16 (never true off x86-64 Linux).
NATIVE_BF16 = pytest.mark.skipif(not onednn.native_bfloat16(),
                                 reason='oneDNN bfloat16: a CPU with AMX or AVX512-BF16')

CASES = [  # (input HxW, in, out, kernel, stride, padding): every ResNet conv kind, odd sizes too
    (8, 3, 4, 3, 1, 1), (8, 4, 6, 3, 2, 1), (7, 4, 6, 3, 2, 1), (8, 4, 6, 1, 2, 0),
    (9, 3, 5, 7, 2, 3), (6, 2, 3, 3, 1, 0), (5, 3, 4, 3, 2, 0), (32, 16, 32, 3, 2, 1),
]


def _pair(hw, cin, cout, k, seed=0, batch=2):
  rng = np.random.default_rng(seed)
  return (jnp.asarray(rng.standard_normal((batch, hw, hw + 1, cin)), jnp.float32),
          jnp.asarray(rng.standard_normal((k, k, cin, cout)), jnp.float32))


def assert_close(ours, ref, tol=1e-5):
  """Equal up to float32 rounding of a different summation order: relative to the largest
  value (elementwise rtol fails on sums that cancel to near zero)."""
  ours, ref = np.asarray(ours), np.asarray(ref)
  assert ours.shape == ref.shape
  np.testing.assert_array_less(np.max(np.abs(ours - ref)), tol * np.max(np.abs(ref)))


def _value_and_grads(conv_fn, x, w, s, pad):
  def f(x, w):
    y = conv_fn(x, w, (s, s), pad, dimension_numbers=conv_vjp.NHWC)
    return jnp.sum(jnp.sin(y)), y  # a non-linear cotangent, not all ones
  (_, y), (dx, dw) = jax.jit(jax.value_and_grad(f, argnums=(0, 1), has_aux=True))(x, w)
  return y, dx, dw


@IMPLS
@pytest.mark.parametrize('hw,cin,cout,k,s,p', CASES)
def test_value_and_gradients_match_lax(impl, hw, cin, cout, k, s, p):
  x, w = _pair(hw, cin, cout, k)
  pad = ((p, p), (p, p))

  for ours, ref in zip(_value_and_grads(CONV_IMPLS[impl], x, w, s, pad),
                       _value_and_grads(lax.conv_general_dilated, x, w, s, pad)):
    assert_close(ours, ref)


@pytest.mark.skipif(sys.platform != 'linux' or platform.machine() != 'x86_64',
                    reason='oneDNN: x86-64 Linux')
@pytest.mark.parametrize('batch', [1, 3, 7, 16])
def test_onednn_batch_slices_cover_every_image(batch):
  """Float32 oneDNN calls split the batch over XLA's threads (uneven slices where it does not
  divide; the weight gradient summed over slices): every batch size gives lax's results."""
  x, w = _pair(16, 16, 16, 3, seed=batch, batch=batch)
  pad = ((1, 1), (1, 1))
  for ours, ref in zip(_value_and_grads(CONV_IMPLS['onednn'], x, w, 1, pad),
                       _value_and_grads(lax.conv_general_dilated, x, w, 1, pad)):
    assert_close(ours, ref)


@IMPLS
def test_gradients_match_inside_scan(impl):
  x, w = _pair(8, 4, 4, 3)
  ws = jnp.stack([w, 0.5 * w, -w])
  pad = ((1, 1), (1, 1))

  def loss(conv_fn, ws):
    def body(h, w):
      return jnp.tanh(h + conv_fn(h, w, (1, 1), pad, dimension_numbers=conv_vjp.NHWC)), None
    return jnp.sum(lax.scan(body, x, ws)[0] ** 2)

  ours = jax.jit(jax.grad(lambda ws: loss(CONV_IMPLS[impl], ws)))(ws)
  ref = jax.jit(jax.grad(lambda ws: loss(lax.conv_general_dilated, ws)))(ws)
  assert_close(ours, ref)


@IMPLS
def test_other_convolutions_go_to_lax_unchanged(impl):
  x, w = _pair(8, 4, 4, 3)
  dilated = CONV_IMPLS[impl](x, w, (1, 1), 'SAME', rhs_dilation=(2, 2),
                             dimension_numbers=conv_vjp.NHWC)
  np.testing.assert_array_equal(dilated, lax.conv_general_dilated(
      x, w, (1, 1), 'SAME', rhs_dilation=(2, 2), dimension_numbers=conv_vjp.NHWC))
  half = x.astype(jnp.float16), w.astype(jnp.float16)  # oneDNN's op: float32 and bfloat16 only
  np.testing.assert_array_equal(
      CONV_IMPLS[impl](*half, (1, 1), ((1, 1), (1, 1)), dimension_numbers=conv_vjp.NHWC),
      lax.conv_general_dilated(*half, (1, 1), ((1, 1), (1, 1)), dimension_numbers=conv_vjp.NHWC))


@NATIVE_BF16
@pytest.mark.parametrize('hw,cin,cout,k,s,p', CASES)
def test_onednn_bfloat16_is_float32_math_on_bfloat16_operands(hw, cin, cout, k, s, p):
  """Values and both gradients: the float32 conv of the same bfloat16 operands (and bfloat16
  cotangent), rounded once to bfloat16 (2^-8 relative), as oneDNN accumulates in float32."""
  x, w = (a.astype(jnp.bfloat16) for a in _pair(hw, cin, cout, k))
  pad = ((p, p), (p, p))
  y, vjp = jax.vjp(lambda x, w: CONV_IMPLS['onednn'](
      x, w, (s, s), pad, dimension_numbers=conv_vjp.NHWC), x, w)
  dy = jnp.cos(y.astype(jnp.float32)).astype(jnp.bfloat16)
  dx, dw = jax.jit(vjp)(dy)
  f32 = lambda a: a.astype(jnp.float32)
  y32, vjp32 = jax.vjp(lambda x, w: lax.conv_general_dilated(
      x, w, (s, s), pad, dimension_numbers=conv_vjp.NHWC), f32(x), f32(w))
  dx32, dw32 = vjp32(f32(dy))
  for ours, ref in ((y, y32), (dx, dx32), (dw, dw32)):
    assert ours.dtype == jnp.bfloat16
    assert_close(f32(ours), ref, tol=8e-3)
