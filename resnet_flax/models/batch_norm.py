"""A drop-in for flax's nn.BatchNorm whose backward pass is written out (`batch_norm_train`).

It also offers PyTorch's running variance: torch.nn.BatchNorm2d normalises with the batch's
biased variance but averages the unbiased one, var * n / (n - 1), into `running_var`; flax and
Keras average the biased one (`unbiased_running_var`). `recompute=False` (`UnfusedBatchNorm`)
keeps autodiff's backward pass, for builds that do not recompute.

Why the written-out backward: autodiff of flax's BatchNorm makes the forward store `x - mean` for the backward; this
one keeps only x and the per-channel statistics and recomputes the normalised values where the
backward reads them (one activation-sized write and read less per BN), and its HLO is smaller;
its gradient of `scale` from sum(g * x) keeps the backward from writing the normalised values
out either. Where that is faster: benchmarks/NOTES.md. Same variables (`scale`, `bias`; `mean`,
`var` in `batch_stats`), statistics (flax's fast variance, E[x^2] - E[x]^2), running averages
and gradients as nn.BatchNorm over NHWC inputs (tests/test_models.py).
"""

import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def batch_norm_train(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float,
                     axis_name: str | None) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(normalised x, batch mean, batch variance) over all axes but the last, in float32 or wider
  (float64 inputs stay float64); with
  `axis_name`, the statistics are over that axis's devices too."""
  return _forward(x, scale, bias, epsilon, axis_name)[0]


def _over_devices(axis_name, values):
  """`values` summed over `axis_name`'s devices (as they are without one)."""
  return values if axis_name is None else lax.psum(values, axis_name)


def _wide(x):
  """x in float32, or in its own dtype where that is wider (float64 under jax_enable_x64)."""
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _forward(x, scale, bias, epsilon, axis_name):
  x32 = _wide(x)
  axes = tuple(range(x.ndim - 1))
  count, total, total_sq = _over_devices(
      axis_name, (x.size // x.shape[-1], jnp.sum(x32, axes), jnp.sum(x32 * x32, axes)))
  mean = total / count
  var = jnp.maximum(0.0, total_sq / count - mean * mean)
  y = (x32 - mean) * (lax.rsqrt(var + epsilon) * scale) + bias
  return (y, mean, var), (x, scale, mean, var)


def _backward(epsilon, axis_name, residuals, cotangents):
  x, scale, mean, var = residuals
  g_y, g_mean, g_var = cotangents
  rstd = lax.rsqrt(var + epsilon)
  x32 = _wide(x)
  centred = x32 - mean
  x_hat = centred * rstd
  axes = tuple(range(x.ndim - 1))
  # sum(g * x_hat) as rstd * (sum(g * x) - mean * sum(g)): a reduction of a plain product,
  # which XLA:CPU fuses into it, where sum(g * x_hat) made it write x_hat out first
  d_bias = jnp.sum(g_y, axes)  # this device's share, as is d_scale
  d_scale = (jnp.sum(g_y * x32, axes) - mean * d_bias) * rstd
  # mean and var came from sums over the devices: what flows back to x sums over them too
  count, sum_g, sum_g_xhat, g_mean, g_var = _over_devices(
      axis_name, (x.size // x.shape[-1], d_bias, d_scale, g_mean, g_var))
  d_x = ((scale * rstd) * (g_y - sum_g / count - x_hat * (sum_g_xhat / count))
         + g_mean / count + centred * (2.0 * g_var / count))
  return d_x.astype(x.dtype), d_scale.astype(scale.dtype), d_bias.astype(scale.dtype)  # param_dtype


batch_norm_train.defvjp(_forward, _backward)


class BatchNorm(nn.Module):
  """nn.BatchNorm's fields and variables (NHWC, statistics over all axes but the last)."""
  use_running_average: bool = False
  momentum: float = 0.99
  epsilon: float = 1e-5
  dtype: Any = None
  param_dtype: Any = jnp.float32
  axis_name: str | None = None
  scale_init: Callable[..., jax.Array] = nn.initializers.ones
  bias_init: Callable[..., jax.Array] = nn.initializers.zeros
  recompute: bool = True  # the hand-written backward above; False: autodiff's
  unbiased_running_var: bool = False  # PyTorch's running_var (n / (n - 1)); False: flax's, Keras's

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    channels = (x.shape[-1],)
    ra_mean = self.variable('batch_stats', 'mean', lambda: jnp.zeros(channels, jnp.float32))
    ra_var = self.variable('batch_stats', 'var', lambda: jnp.ones(channels, jnp.float32))
    scale = self.param('scale', self.scale_init, channels, self.param_dtype)
    bias = self.param('bias', self.bias_init, channels, self.param_dtype)
    dtype = self.dtype or jnp.result_type(x, scale)
    if self.use_running_average:  # flax's order of operations, so eval matches it bit for bit
      y = x - ra_mean.value
      return (y * (lax.rsqrt(ra_var.value + self.epsilon) * scale) + bias).astype(dtype)
    train = batch_norm_train if self.recompute else lambda *a: _forward(*a)[0]
    y, mean, var = train(x, scale, bias, self.epsilon, self.axis_name)
    if self.unbiased_running_var:
      count = _over_devices(self.axis_name, x.size // x.shape[-1])
      var = var * count / jnp.maximum(count - 1, 1)
    if not self.is_initializing():
      ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
      ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var
    return y.astype(dtype)


class UnfusedBatchNorm(BatchNorm):
  """BatchNorm with autodiff's backward pass: for PyTorch's running variance without recompute_bn."""
  recompute: bool = False
