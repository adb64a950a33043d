"""One ResNet assembled from swappable parts: stem, block, shortcut, stage sizes, widths.

Every variant in the registry is a few lines that pick parts; none copies this file.
Blocks take `(features, strides, shortcut_cls, norm, dtype, conv)` plus their own options and
are called as `block(x, train)`; `features` is the block's inner width (bottleneck
blocks output `expansion` times it). `norm` and `conv` are factories handed down from ResNet,
which takes them from its builder (models/parts.py): the model chooses no kernels itself.
"""

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

from resnet_flax.models import layers, recompute
from resnet_flax.models.layers import ModuleDef, batch_norm, relu

Norm = Callable[..., nn.Module]


class Shortcut(nn.Module):
  """What every shortcut takes; it is applied only where a block changes shape."""
  features: int
  strides: int
  norm: Norm
  dtype: Any = jnp.float32
  conv: ModuleDef = layers.conv


class Block(nn.Module):
  """What every residual block takes; subclasses add their own options (with defaults)."""
  features: int
  strides: int
  shortcut_cls: ModuleDef
  norm: Norm
  dtype: Any = jnp.float32
  conv: ModuleDef = layers.conv


class ShortcutA(Shortcut):
  """He et al.'s parameter-free shortcut: subsample, then zero-pad channels equally on both sides."""

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    s = self.strides
    x = x[:, ::s, ::s, :]
    extra = self.features - x.shape[-1]
    return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))


class ShortcutB(Shortcut):
  """Projection shortcut: 1x1 conv (with the block's stride) + BN."""

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    x = self.conv(self.features, 1, self.strides, self.dtype, name='conv')(x)
    return self.norm(name='bn')(x)


class ShortcutConv(Shortcut):
  """Projection without BN, as pre-activation ResNets and WRNs use (their input is already normalised)."""

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    return self.conv(self.features, 1, self.strides, self.dtype, name='conv')(x)


class ShortcutPool(Shortcut):
  """2x2 average pooling where the block strides, then zero channel padding (no parameters, no BN)."""

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    if self.strides > 1:
      s = self.strides
      x = nn.avg_pool(x, (s, s), strides=(s, s))
    extra = self.features - x.shape[-1]
    return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))


def _needs_shortcut(x: jnp.ndarray, features: int, strides: int) -> bool:
  return strides != 1 or x.shape[-1] != features


def _zeros_if(flag: bool) -> dict[str, Any]:
  """BN scale init: zero for the last BN of a residual branch, so each block starts as identity."""
  return {'scale_init': nn.initializers.zeros} if flag else {}


class BasicBlock(Block):
  """conv3x3-BN-ReLU-conv3x3-BN, add, ReLU (He et al. 2016)."""
  zero_init_last_bn: bool = False

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    y = self.conv(self.features, 3, self.strides, self.dtype, name='conv1')(x)
    y = relu(self.norm(name='bn1')(y))
    y = self.conv(self.features, 3, 1, self.dtype, name='conv2')(y)
    y = self.norm(name='bn2', **_zeros_if(self.zero_init_last_bn))(y)
    if _needs_shortcut(x, self.features, self.strides):
      x = self.shortcut_cls(self.features, self.strides, self.norm, self.dtype,
                            conv=self.conv, name='shortcut')(x)
    return relu(y + x)


class BottleneckBlock(Block):
  """1x1-3x3-1x1 with BN; the stride is on the 3x3 (torchvision's "ResNet v1.5").

  `groups` > 1 makes the 3x3 a grouped conv (ResNeXt).
  """
  zero_init_last_bn: bool = False
  groups: int = 1
  expansion: float = 4  # output width / inner width (ResNeXt-29: 2 for 32x4d, 0.5 for 8x64d)

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    out = int(self.features * self.expansion)
    y = self.conv(self.features, 1, 1, self.dtype, name='conv1')(x)
    y = relu(self.norm(name='bn1')(y))
    y = self.conv(self.features, 3, self.strides, self.dtype, name='conv2',
                  feature_group_count=self.groups)(y)
    y = relu(self.norm(name='bn2')(y))
    y = self.conv(out, 1, 1, self.dtype, name='conv3')(y)
    y = self.norm(name='bn3', **_zeros_if(self.zero_init_last_bn))(y)
    if _needs_shortcut(x, out, self.strides):
      x = self.shortcut_cls(out, self.strides, self.norm, self.dtype,
                            conv=self.conv, name='shortcut')(x)
    return relu(y + x)


class PreActBasicBlock(Block):
  """BN-ReLU-conv3x3-BN-ReLU-conv3x3, add (He et al., Identity Mappings). Optional dropout (WRN).

  A projection shortcut reads the pre-activated input, as in the paper and WRN.
  """
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    pre = relu(self.norm(name='bn1')(x))
    y = self.conv(self.features, 3, self.strides, self.dtype, name='conv1')(pre)
    y = relu(self.norm(name='bn2')(y))
    if self.dropout_rate:
      y = nn.Dropout(self.dropout_rate, deterministic=not train)(y)
    y = self.conv(self.features, 3, 1, self.dtype, name='conv2')(y)
    if _needs_shortcut(x, self.features, self.strides):
      x = self.shortcut_cls(self.features, self.strides, self.norm, self.dtype,
                            conv=self.conv, name='shortcut')(pre)
    return y + x


class PreActBottleneckBlock(Block):
  """Pre-activation bottleneck: BN-ReLU-1x1, BN-ReLU-3x3 (stride), BN-ReLU-1x1 (x4), add."""
  expansion: float = 4

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    out = int(self.features * self.expansion)
    pre = relu(self.norm(name='bn1')(x))
    y = self.conv(self.features, 1, 1, self.dtype, name='conv1')(pre)
    y = self.conv(self.features, 3, self.strides, self.dtype, name='conv2')(
        relu(self.norm(name='bn2')(y)))
    y = self.conv(out, 1, 1, self.dtype, name='conv3')(relu(self.norm(name='bn3')(y)))
    if _needs_shortcut(x, out, self.strides):
      x = self.shortcut_cls(out, self.strides, self.norm, self.dtype,
                            conv=self.conv, name='shortcut')(pre)
    return y + x


class PlainBlock(Block):
  """Two biased 3x3 convs with a ReLU after each, no normalisation (tutorial residual nets)."""

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    y = relu(self.conv(self.features, 3, self.strides, self.dtype, name='conv1', use_bias=True)(x))
    y = relu(self.conv(self.features, 3, 1, self.dtype, name='conv2', use_bias=True)(y))
    if _needs_shortcut(x, self.features, self.strides):
      x = self.shortcut_cls(self.features, self.strides, self.norm, self.dtype,
                            conv=self.conv, name='shortcut')(x)
    return y + x


class Stem(nn.Module):
  """conv (kernel, stride) [+ BN] [+ ReLU] [+ 3x3 stride-2 max-pool].

  CIFAR: 3x3/1 conv-BN-ReLU. ImageNet: 7x7/2 conv-BN-ReLU + max-pool. Pre-activation
  nets: conv only (their first block normalises).
  """
  features: int
  norm: Norm
  dtype: Any = jnp.float32
  conv: ModuleDef = layers.conv
  kernel: int = 3
  strides: int = 1
  use_norm: bool = True
  activate: bool = True
  max_pool: bool = False
  use_bias: bool = False

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    x = self.conv(self.features, self.kernel, self.strides, self.dtype, name='conv',
                  use_bias=self.use_bias)(x)
    if self.use_norm:
      x = self.norm(name='bn')(x)
    if self.activate:
      x = relu(x)
    if self.max_pool:
      x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    return x


def _scan_step(block: nn.Module, x: jnp.ndarray, train: bool) -> tuple[jnp.ndarray, None]:
  """`block(x, train) -> x` as nn.scan's `(carry, x) -> (carry, y)`; `train` is broadcast (static)."""
  return block(x, train), None


class ResNet(nn.Module):
  """A ResNet over NHWC images. Stage i has `stage_sizes[i]` blocks of (inner) width `widths[i]`.

  The first block of every stage but the first has stride 2. `final_norm` adds the
  BN-ReLU that pre-activation nets need before pooling. BatchNorm running statistics
  are in the `batch_stats` collection; pass `mutable=['batch_stats']` when `train=True`
  (and a 'dropout' rng when dropout is on).

  `scan_blocks` builds blocks 2..n of each stage with `nn.scan` over one block
  (`stage{i}_blocks`, variables stacked on a leading axis of length n-1), so trace and
  compile time stop growing with depth; `scan_layout` converts variables between the
  layouts. Give it convs that stay fast in a loop body (models/parts.plain: layers.scan_conv).
  `remat_blocks` recomputes each block in the backward pass (nn.remat): 'on' (True) keeps only
  its input, 'convs' its input and its convs' outputs (BN and ReLU are recomputed, no conv):
  the same function and gradients in less memory, for more forward work.

  `conv` and `norm` are the parts every conv and BatchNorm is built with (models/parts.py):
  a factory with layers.conv's signature and a BatchNorm class with nn.BatchNorm's fields.
  Any choice computes the same function with the same variables; the builder picks the
  implementation that suits its backend.
  """
  stage_sizes: Sequence[int]
  widths: Sequence[int]
  num_classes: int
  block_cls: ModuleDef = BasicBlock
  stem_cls: ModuleDef = Stem
  shortcut_cls: ModuleDef = ShortcutA
  stem_width: int | None = None  # None: widths[0]
  final_norm: bool = False
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5
  bn_unbiased_running_var: bool = False  # PyTorch's running_var (n / (n - 1)); needs our BatchNorm
  dtype: Any = jnp.float32  # compute dtype; logits in float32 or wider (float64 stays float64)
  block_options: Any = None  # extra block fields, e.g. {'dropout_rate': 0.3}
  scan_blocks: bool = False
  remat_blocks: bool | str = False  # recompute.MODES: 'off' (False), 'convs', 'on' (True)
  bn_axis_name: str | None = None  # a pmap/shard_map axis: BN statistics over all its devices
  conv: ModuleDef = layers.conv  # builds every conv (models/parts.py)
  norm: ModuleDef = nn.BatchNorm  # the BatchNorm class (nn.BatchNorm or layers.RecomputedBatchNorm)
  head_init: Any = nn.linear.default_kernel_init  # the classifier's kernel init (flax's default)

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    if len(self.stage_sizes) != len(self.widths):
      raise ValueError(f'stage_sizes {self.stage_sizes} and widths {self.widths} differ in length')
    norm = batch_norm(train, self.bn_momentum, self.bn_epsilon, self.dtype, self.bn_axis_name,
                      self.norm, self.bn_unbiased_running_var)
    options = dict(self.block_options or {})
    x = jnp.asarray(x, self.dtype)
    x = self.stem_cls(self.stem_width or self.widths[0], norm, self.dtype, conv=self.conv,
                      name='stem')(x)
    remat = recompute.mode(self.remat_blocks)
    conv = recompute.named(self.conv) if remat == 'convs' else self.conv
    parts = (self.shortcut_cls, norm, self.dtype, conv)
    block_cls, scan_cls = (
        (recompute.recomputed(self.block_cls, in_scan, remat) for in_scan in (False, True))
        if remat != 'off' else (self.block_cls, self.block_cls))
    for i, (blocks, width) in enumerate(zip(self.stage_sizes, self.widths)):
      scanned = self.scan_blocks and blocks > 1
      for j in range(1, 2 if scanned else blocks + 1):
        strides = 2 if i > 0 and j == 1 else 1
        x = block_cls(width, strides, *parts, **options, name=f'stage{i + 1}_block{j}')(x, train)
      if scanned:
        scan = nn.scan(_scan_step, variable_axes={'params': 0, 'batch_stats': 0},
                       split_rngs={'params': True, 'dropout': True},
                       in_axes=(nn.broadcast,), length=blocks - 1)
        block = scan_cls(width, 1, *parts, **options, name=f'stage{i + 1}_blocks')
        x, _ = scan(block, x, train)
    if self.final_norm:
      x = relu(norm(name='final_bn')(x))
    x = jnp.mean(x, axis=(1, 2))
    x = nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=self.head_init, name='head')(x)
    return jnp.asarray(x, jnp.promote_types(x.dtype, jnp.float32))  # float64 stays (x64 tests)
