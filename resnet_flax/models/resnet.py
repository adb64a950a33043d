"""One ResNet assembled from swappable parts: stem, block, shortcut, stage sizes, widths.

Every variant in the registry is a few lines that pick parts; none copies this file.
"""

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

from resnet_flax.models.layers import ModuleDef, batch_norm, conv, relu


class ShortcutA(nn.Module):
  """He et al.'s parameter-free shortcut: subsample, then zero-pad channels equally on both sides."""
  features: int
  strides: int
  norm: Callable[..., nn.Module]
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    s = self.strides
    x = x[:, ::s, ::s, :]
    extra = self.features - x.shape[-1]
    return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))


class ShortcutB(nn.Module):
  """Projection shortcut: 1x1 conv (with the block's stride) + BN."""
  features: int
  strides: int
  norm: Callable[..., nn.Module]
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    x = conv(self.features, 1, self.strides, self.dtype, name='conv')(x)
    return self.norm(name='bn')(x)


class BasicBlock(nn.Module):
  """Two 3x3 convs with BN; the shortcut is used only where the shape changes."""
  features: int
  strides: int
  shortcut_cls: ModuleDef
  norm: Callable[..., nn.Module]
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    y = conv(self.features, 3, self.strides, self.dtype, name='conv1')(x)
    y = relu(self.norm(name='bn1')(y))
    y = conv(self.features, 3, 1, self.dtype, name='conv2')(y)
    y = self.norm(name='bn2')(y)
    if self.strides != 1 or x.shape[-1] != self.features:
      x = self.shortcut_cls(self.features, self.strides, self.norm, self.dtype, name='shortcut')(x)
    return relu(y + x)


class CifarStem(nn.Module):
  """3x3 stride-1 conv + BN + ReLU: keeps the 32x32 resolution."""
  features: int
  norm: Callable[..., nn.Module]
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    x = conv(self.features, 3, 1, self.dtype, name='conv')(x)
    return relu(self.norm(name='bn')(x))


class ResNet(nn.Module):
  """A ResNet over NHWC images. Stage i has `stage_sizes[i]` blocks of width `widths[i]`.

  The first block of every stage but the first has stride 2. BatchNorm running
  statistics are in the `batch_stats` collection; pass `mutable=['batch_stats']`
  when `train=True`.
  """
  stage_sizes: Sequence[int]
  widths: Sequence[int]
  num_classes: int
  block_cls: ModuleDef = BasicBlock
  stem_cls: ModuleDef = CifarStem
  shortcut_cls: ModuleDef = ShortcutA
  stem_width: int | None = None  # None: widths[0]
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5
  dtype: Any = jnp.float32  # compute dtype; params, BN statistics and logits stay float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    if len(self.stage_sizes) != len(self.widths):
      raise ValueError(f'stage_sizes {self.stage_sizes} and widths {self.widths} differ in length')
    norm = batch_norm(train, self.bn_momentum, self.bn_epsilon, self.dtype)
    x = jnp.asarray(x, self.dtype)
    x = self.stem_cls(self.stem_width or self.widths[0], norm, self.dtype, name='stem')(x)
    for i, (blocks, width) in enumerate(zip(self.stage_sizes, self.widths)):
      for j in range(blocks):
        strides = 2 if i > 0 and j == 0 else 1
        x = self.block_cls(width, strides, self.shortcut_cls, norm, self.dtype,
                           name=f'stage{i + 1}_block{j + 1}')(x)
    x = jnp.mean(x, axis=(1, 2))
    x = nn.Dense(self.num_classes, dtype=self.dtype, name='head')(x)
    return jnp.asarray(x, jnp.float32)
