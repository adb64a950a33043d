"""A convolution whose backward pass is written as two plain NHWC/HWIO convolutions.

Why: inside a loop body (nn.scan over blocks) XLA:CPU does not rewrite autodiff's gradient
convolutions (batch and feature dimensions swapped) into its fast kernels and runs a naive
loop instead, many times slower (jax-ml/jax#12868, benchmarks/NOTES.md). Written out in the standard form, both gradients take the fast path at
any nesting. Same function and gradients as `lax.conv_general_dilated`
(tests/test_conv_impls.py); stride and explicit padding only, no dilation or groups, as every
ResNet conv here is.
"""

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import lax

NHWC = ('NHWC', 'HWIO', 'NHWC')


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv(x: jax.Array, w: jax.Array, strides: tuple[int, int], padding: tuple) -> jax.Array:
  """NHWC input, HWIO kernel; `padding` as ((lo, hi), (lo, hi))."""
  return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=NHWC)


def _forward(x, w, strides, padding):
  return conv(x, w, strides, padding), (x, w)


def _backward(strides, padding, residuals, dy):
  x, w = residuals
  k = w.shape[:2]
  in_size, out_size = x.shape[1:3], dy.shape[1:3]
  # dx: dy dilated by the stride, convolved with the kernel flipped and its I/O swapped.
  dx_padding = []
  for d in range(2):
    before = k[d] - 1 - padding[d][0]
    dilated = (out_size[d] - 1) * strides[d] + 1
    dx_padding.append((before, in_size[d] + k[d] - 1 - dilated - before))
  w_flipped = jnp.flip(w, (0, 1)).swapaxes(2, 3)
  dx = lax.conv_general_dilated(dy, w_flipped, (1, 1), dx_padding, lhs_dilation=strides,
                                dimension_numbers=NHWC)
  # dw: channels as the batch, images as the features: x^T (C,H,W,N) * dy^T (Ho,Wo,N,O).
  dw_padding = [(padding[d][0], k[d] + (out_size[d] - 1) * strides[d] - in_size[d] - padding[d][0])
                for d in range(2)]
  dw = lax.conv_general_dilated(x.transpose(3, 1, 2, 0), dy.transpose(1, 2, 0, 3), (1, 1),
                                dw_padding, rhs_dilation=strides, dimension_numbers=NHWC)
  return dx.astype(x.dtype), dw.transpose(1, 2, 0, 3).astype(w.dtype)


conv.defvjp(_forward, _backward)


def lax_signature(conv_fn: Callable[..., jax.Array], dtypes: tuple[Any, ...] | None = None,
                  ) -> Callable[..., jax.Array]:
  """`conv_fn(x, w, strides, padding)` behind `lax.conv_general_dilated`'s signature, as flax's
  nn.Conv calls it: NHWC/HWIO convs without dilation or groups (and of `dtypes`, if given) go
  to `conv_fn`, anything else to lax unchanged."""
  def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                           rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                           precision=None, **kwargs) -> jax.Array:
    undilated = all(d == 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
    plain = (undilated and feature_group_count == 1 and not isinstance(padding, str)
             and not kwargs and precision is None and lhs.ndim == 4
             and (dtypes is None or (lhs.dtype in dtypes and rhs.dtype in dtypes))
             and lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
             == lax.conv_dimension_numbers(lhs.shape, rhs.shape, NHWC))
    if not plain:
      return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation,
                                      rhs_dilation, dimension_numbers, feature_group_count,
                                      precision=precision, **kwargs)
    return conv_fn(lhs, rhs, tuple(window_strides), tuple(tuple(p) for p in padding))
  return conv_general_dilated


conv_general_dilated = lax_signature(conv)
