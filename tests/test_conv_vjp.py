"""models.conv_vjp: the same values and gradients as lax.conv_general_dilated, also under scan."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from resnet_flax.models import conv_vjp

CASES = [  # (input HxW, in, out, kernel, stride, padding): every ResNet conv kind, odd sizes too
    (8, 3, 4, 3, 1, 1), (8, 4, 6, 3, 2, 1), (7, 4, 6, 3, 2, 1), (8, 4, 6, 1, 2, 0),
    (9, 3, 5, 7, 2, 3), (6, 2, 3, 3, 1, 0),
]


def _pair(hw, cin, cout, k, seed=0):
  rng = np.random.default_rng(seed)
  return (jnp.asarray(rng.standard_normal((2, hw, hw + 1, cin)), jnp.float32),
          jnp.asarray(rng.standard_normal((k, k, cin, cout)), jnp.float32))


@pytest.mark.parametrize('hw,cin,cout,k,s,p', CASES)
def test_value_and_gradients_match_lax(hw, cin, cout, k, s, p):
  x, w = _pair(hw, cin, cout, k)
  pad = ((p, p), (p, p))

  def loss(conv_fn):
    def f(x, w):
      y = conv_fn(x, w, (s, s), pad, dimension_numbers=conv_vjp.NHWC)
      return jnp.sum(jnp.sin(y)), y  # a non-linear cotangent, not all ones
    return jax.jit(jax.value_and_grad(f, argnums=(0, 1), has_aux=True))(x, w)

  (_, y_ours), (dx_ours, dw_ours) = loss(conv_vjp.conv_general_dilated)
  (_, y_lax), (dx_lax, dw_lax) = loss(lax.conv_general_dilated)
  np.testing.assert_allclose(y_ours, y_lax, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(dx_ours, dx_lax, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(dw_ours, dw_lax, rtol=1e-4, atol=1e-4)


def test_gradients_match_inside_scan():
  x, w = _pair(8, 4, 4, 3)
  ws = jnp.stack([w, 0.5 * w, -w])
  pad = ((1, 1), (1, 1))

  def loss(conv_fn, ws):
    def body(h, w):
      return jnp.tanh(h + conv_fn(h, w, (1, 1), pad, dimension_numbers=conv_vjp.NHWC)), None
    return jnp.sum(lax.scan(body, x, ws)[0] ** 2)

  ours = jax.jit(jax.grad(lambda ws: loss(conv_vjp.conv_general_dilated, ws)))(ws)
  ref = jax.jit(jax.grad(lambda ws: loss(lax.conv_general_dilated, ws)))(ws)
  np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


def test_other_convolutions_go_to_lax_unchanged():
  x, w = _pair(8, 4, 4, 3)
  dilated = conv_vjp.conv_general_dilated(x, w, (1, 1), 'SAME', rhs_dilation=(2, 2),
                                          dimension_numbers=conv_vjp.NHWC)
  np.testing.assert_array_equal(dilated, lax.conv_general_dilated(
      x, w, (1, 1), 'SAME', rhs_dilation=(2, 2), dimension_numbers=conv_vjp.NHWC))
