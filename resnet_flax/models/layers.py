"""Small building blocks shared by every ResNet variant."""

import functools
from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

from resnet_flax.models import batch_norm as batch_norm_lib
from resnet_flax.models import conv_vjp

ModuleDef = Any

# He et al. (2015) normal init, untruncated, fan-in: what PyTorch's kaiming_normal_ gives.
he_normal = nn.initializers.variance_scaling(2.0, 'fan_in', 'normal')


def relu(x: jnp.ndarray) -> jnp.ndarray:
  """ReLU written as a genuinely binary op.

  `nn.relu` lowers to max(x, 0), which XLA:CPU's fusion pass duplicates into every
  consumer, making the backward pass of a residual chain O(depth^2); `where` computes the
  same values and gradients and is not duplicated.
  """
  return jnp.where(x > 0, x, jnp.zeros((), x.dtype))


def conv(features: int, kernel: int, strides: int = 1, dtype: Any = jnp.float32,
         name: str | None = None, use_bias: bool = False, padding: Any = None,
         kernel_init: Callable[..., Any] = he_normal, **kwargs) -> nn.Conv:
  """A conv (bias-free by default: BN follows) with PyTorch's symmetric padding (k // 2 per side)
  unless `padding` gives explicit ((lo, hi), (lo, hi)) pads.

  flax's 'SAME' pads (0, 1) for stride-2 convs on even inputs, which shifts the
  sampling grid and breaks weights ported from PyTorch (Keras nets want it: `same_padding`).
  """
  pad = kernel // 2
  return nn.Conv(features, (kernel, kernel), strides=(strides, strides),
                 padding=padding if padding is not None else ((pad, pad), (pad, pad)),
                 use_bias=use_bias, kernel_init=kernel_init, dtype=dtype, name=name, **kwargs)


def same_padding(x: jnp.ndarray, kernel: int, strides: int) -> tuple[tuple[int, int], ...]:
  """TF/Keras 'same' pads for a conv over NHWC `x`, made explicit (some conv kernels take only
  explicit pads): (0, 1) where a stride-2 conv meets an even size, symmetric otherwise."""
  return tuple(lax.padtype_to_pads(x.shape[1:3], (kernel, kernel), (strides, strides), 'SAME'))


def conv_computed_by(conv_general_dilated: Callable[..., Any]) -> Callable[..., nn.Conv]:
  """`conv` whose modules compute with `conv_general_dilated` (lax's signature) instead of lax's."""
  return functools.partial(conv, conv_general_dilated=conv_general_dilated)


# `conv` with a hand-written backward pass (models.conv_vjp): what keeps convs inside an nn.scan
# body on XLA:CPU's fast kernels; the same function and gradients as lax's.
scan_conv = conv_computed_by(conv_vjp.conv_general_dilated)


# BatchNorm whose backward pass recomputes the normalised activations from its input and the
# per-channel statistics instead of reading a stored copy of `x - mean` (models/batch_norm.py).
RecomputedBatchNorm = batch_norm_lib.BatchNorm
# The same module with autodiff's backward pass: for PyTorch's running variance where
# BatchNorm is not recomputed (flax's nn.BatchNorm averages the biased variance).
UnfusedBatchNorm = batch_norm_lib.UnfusedBatchNorm


def batch_norm(train: bool, momentum: float, epsilon: float, dtype: Any,
               axis_name: str | None = None, norm_cls: ModuleDef = nn.BatchNorm,
               unbiased_running_var: bool = False) -> Callable[..., nn.Module]:
  """BatchNorm factory; running statistics live in the `batch_stats` collection.

  Defaults follow PyTorch (flax momentum 0.9 == torch momentum 0.1, eps 1e-5).
  Scale and bias stay float32 whatever the compute dtype. `axis_name` (pmap or
  shard_map) averages the batch statistics over that axis's devices. `norm_cls` is
  nn.BatchNorm or `RecomputedBatchNorm` (the same fields and variables).
  `unbiased_running_var`: PyTorch's running variance (models/batch_norm.py); flax's
  nn.BatchNorm cannot give it, so `norm_cls` must then be one of ours.
  """
  if unbiased_running_var:
    if not issubclass(norm_cls, batch_norm_lib.BatchNorm):
      raise ValueError(f'{norm_cls.__name__} has no unbiased running variance: use '
                       'RecomputedBatchNorm or UnfusedBatchNorm (models/parts.plain picks them)')
    norm_cls = functools.partial(norm_cls, unbiased_running_var=True)
  return functools.partial(norm_cls,
                           use_running_average=not train,
                           momentum=momentum, epsilon=epsilon, dtype=dtype,
                           param_dtype=jnp.float32, axis_name=axis_name)
