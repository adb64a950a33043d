"""Small building blocks shared by every ResNet variant."""

import contextlib
import contextvars
import functools
from collections.abc import Iterator
from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

from resnet_flax.models import batch_norm as batch_norm_lib
from resnet_flax.models import conv_vjp
from resnet_flax.ops import onednn

ModuleDef = Any

# He et al. (2015) normal init, untruncated, fan-in: what PyTorch's kaiming_normal_ gives.
he_normal = nn.initializers.variance_scaling(2.0, 'fan_in', 'normal')


def relu(x: jnp.ndarray) -> jnp.ndarray:
  """ReLU written as a genuinely binary op.

  `nn.relu` lowers to max(x, 0), which XLA:CPU's fusion pass duplicates into every
  consumer, making the backward pass of a residual chain O(depth^2)
  (../shared/notes/stack.md). `where` computes the same values and gradients.
  """
  return jnp.where(x > 0, x, jnp.zeros((), x.dtype))


# How the convs built inside a `conv_impl` block compute: 'xla' (lax's conv and autodiff),
# 'by_hand' (models.conv_vjp: a hand-written backward, what keeps convs in an nn.scan body fast
# on XLA:CPU; outside loops lax's own is as fast) or 'onednn' (ops.onednn: oneDNN kernels on
# the CPU, float32 or bfloat16). benchmarks/NOTES.md has the numbers.
CONV_IMPLS = {'xla': None, 'by_hand': conv_vjp.conv_general_dilated,
              'onednn': conv_vjp.lax_signature(onednn.conv, onednn.DTYPES)}
_CONV_IMPL = contextvars.ContextVar('conv_impl', default='xla')


@contextlib.contextmanager
def conv_impl(name: str) -> Iterator[None]:
  """Convs built inside compute with CONV_IMPLS[name]."""
  if name not in CONV_IMPLS:
    raise ValueError(f'conv_impl {name!r}: use one of {sorted(CONV_IMPLS)}')
  token = _CONV_IMPL.set(name)
  try:
    yield
  finally:
    _CONV_IMPL.reset(token)


def conv(features: int, kernel: int, strides: int = 1, dtype: Any = jnp.float32,
         name: str | None = None, use_bias: bool = False, **kwargs) -> nn.Conv:
  """A conv (bias-free by default: BN follows) with PyTorch's symmetric padding (k // 2 per side).

  flax's 'SAME' pads (0, 1) for stride-2 convs on even inputs, which shifts the
  sampling grid and breaks weights ported from PyTorch.
  """
  pad = kernel // 2
  impl = CONV_IMPLS[_CONV_IMPL.get()]
  if impl is not None:
    kwargs.setdefault('conv_general_dilated', impl)
  return nn.Conv(features, (kernel, kernel), strides=(strides, strides),
                 padding=((pad, pad), (pad, pad)), use_bias=use_bias,
                 kernel_init=he_normal, dtype=dtype, name=name, **kwargs)


# BatchNorm whose backward pass recomputes the normalised activations from its input and the
# per-channel statistics instead of reading a stored copy of `x - mean` (models/batch_norm.py).
RecomputedBatchNorm = batch_norm_lib.BatchNorm


def batch_norm(train: bool, momentum: float, epsilon: float, dtype: Any,
               axis_name: str | None = None, recompute: bool = False,
               ) -> Callable[..., nn.BatchNorm]:
  """BatchNorm factory; running statistics live in the `batch_stats` collection.

  Defaults follow PyTorch (flax momentum 0.9 == torch momentum 0.1, eps 1e-5).
  Scale and bias stay float32 whatever the compute dtype. `axis_name` (pmap or
  shard_map) averages the batch statistics over that axis's devices. `recompute` builds
  `RecomputedBatchNorm`: faster on CPU (benchmarks/NOTES.md), where ResNet chooses it.
  """
  return functools.partial(RecomputedBatchNorm if recompute else nn.BatchNorm,
                           use_running_average=not train,
                           momentum=momentum, epsilon=epsilon, dtype=dtype,
                           param_dtype=jnp.float32, axis_name=axis_name)
