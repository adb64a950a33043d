"""Residual nets that TF/Keras/PyTorch lessons teach, so that ported lessons run unchanged.

`plain_resnet`: no BatchNorm; 3x3 conv stem (32) + ReLU; stages [2, 3, 3, 2] at
  32/64/128/256; blocks of two biased 3x3 convs, ReLU after each; shortcut 2x2 average
  pool + zero channel padding where the width doubles. 32x32 in -> 4x4x256 features.
`bottleneck96`: for 96x96 inputs: 5x5 stride-2 conv (32) + BN-ReLU + 3x3 stride-2 max-pool
  (48x48x32 before the pool), two bottlenecks to 128 (24x24x128), two to 512 with
  stride 2 (12x12x512); projection shortcuts.
`tutorial_resnet18`: the PyTorch lesson's ResNet-18 for 1-channel 96x96 images, which is not
  torchvision's: every conv has a bias, its blocks have no ReLU between the two conv-BNs
  (conv-BN-conv-BN, add, ReLU), and where a block strides its shortcut is a 3x3 conv (stride 2,
  padding 1) + BN; 7x7 stride-2 stem (biased) + BN-ReLU + 3x3 stride-2 max-pool.
`keras_resnet18`, `keras_resnet34`: the Keras lesson's (tutorial seed 004) ResNet-18/34 for
  CIFAR-100: Keras's Conv2D throughout (biased, glorot-uniform, 'same' pads as TF computes
  them: (0, 1) for stride 2 on even sizes); stem 3x3 'valid' conv-BN-ReLU + 2x2 stride-1 'same'
  max-pool; blocks conv-BN-ReLU-conv-BN, add, ReLU; where a block strides, a 1x1 conv without
  BN projects the shortcut; glorot-uniform head. Keras's BatchNorm (momentum 0.99, eps 1e-3,
  biased running variance) is the config's (configs/resnet18_cifar100.py).
"""

import functools

import flax.linen as nn
import jax.numpy as jnp

from resnet_flax.models import registry
from resnet_flax.models.layers import relu, same_padding
from resnet_flax.models.resnet import (Block, BottleneckBlock, PlainBlock, ResNet, Shortcut,
                                       ShortcutB, ShortcutPool, Stem)


class LessonShortcut(Shortcut):
  """3x3 conv (biased, the block's stride, padding 1) + BN: the PyTorch lesson's downsample."""

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    x = self.conv(self.features, 3, self.strides, self.dtype, name='conv', use_bias=True)(x)
    return self.norm(name='bn')(x)


class LessonBlock(Block):
  """conv3x3-BN-conv3x3-BN (biased convs, no ReLU between), add, ReLU: the PyTorch lesson's
  `Residual`, whose shortcut applies only where the block strides."""

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    y = self.conv(self.features, 3, self.strides, self.dtype, name='conv1', use_bias=True)(x)
    y = self.norm(name='bn1')(y)
    y = self.conv(self.features, 3, 1, self.dtype, name='conv2', use_bias=True)(y)
    y = self.norm(name='bn2')(y)
    if self.strides != 1:
      x = self.shortcut_cls(self.features, self.strides, self.norm, self.dtype,
                            conv=self.conv, name='shortcut')(x)
    return relu(y + x)


glorot_uniform = nn.initializers.glorot_uniform()  # Keras's default kernel init


class KerasStem(Stem):
  """Conv2D(3x3, 'valid') + BN + ReLU + MaxPooling2D(2x2, stride 1, 'same')."""

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    x = self.conv(self.features, 3, 1, self.dtype, name='conv', use_bias=True,
                  padding=((0, 0), (0, 0)), kernel_init=glorot_uniform)(x)
    x = relu(self.norm(name='bn')(x))
    return nn.max_pool(x, (2, 2), strides=(1, 1), padding='SAME')


class KerasShortcut(Shortcut):
  """Conv2D(1x1, the block's stride), biased, no BN: the Keras lesson's `downsample`."""

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    return self.conv(self.features, 1, self.strides, self.dtype, name='conv', use_bias=True,
                     padding=((0, 0), (0, 0)), kernel_init=glorot_uniform)(x)


class KerasBlock(Block):
  """The Keras lesson's BasicBlock: conv-BN-ReLU-conv-BN ('same' 3x3 Conv2Ds), add, ReLU; the
  shortcut applies only where the block strides."""

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    conv = functools.partial(self.conv, dtype=self.dtype, use_bias=True,
                             kernel_init=glorot_uniform)
    y = conv(self.features, 3, self.strides, name='conv1',
             padding=same_padding(x, 3, self.strides))(x)
    y = relu(self.norm(name='bn1')(y))
    y = conv(self.features, 3, 1, name='conv2', padding=same_padding(y, 3, 1))(y)
    y = self.norm(name='bn2')(y)
    if self.strides != 1:
      x = self.shortcut_cls(self.features, self.strides, self.norm, self.dtype,
                            conv=self.conv, name='shortcut')(x)
    return relu(y + x)


def _keras_resnet(stage_sizes: tuple[int, ...], num_classes: int) -> ResNet:
  return ResNet(stage_sizes=stage_sizes, widths=(64, 128, 256, 512), num_classes=num_classes,
                block_cls=KerasBlock, shortcut_cls=KerasShortcut, stem_cls=KerasStem,
                head_init=glorot_uniform)


def keras_resnet18(num_classes: int) -> ResNet:
  return _keras_resnet((2, 2, 2, 2), num_classes)


def keras_resnet34(num_classes: int) -> ResNet:
  return _keras_resnet((3, 4, 6, 3), num_classes)


def tutorial_resnet18(num_classes: int) -> ResNet:
  return ResNet(stage_sizes=(2, 2, 2, 2), widths=(64, 128, 256, 512), num_classes=num_classes,
                block_cls=LessonBlock, shortcut_cls=LessonShortcut,
                stem_cls=functools.partial(Stem, kernel=7, strides=2, max_pool=True,
                                           use_bias=True))


def plain_resnet(num_classes: int) -> ResNet:
  return ResNet(stage_sizes=(2, 3, 3, 2), widths=(32, 64, 128, 256), num_classes=num_classes,
                block_cls=PlainBlock, shortcut_cls=ShortcutPool,
                stem_cls=functools.partial(Stem, use_norm=False, use_bias=True))


def bottleneck96(num_classes: int) -> ResNet:
  return ResNet(stage_sizes=(2, 2), widths=(32, 128), num_classes=num_classes,
                block_cls=BottleneckBlock, shortcut_cls=ShortcutB,
                stem_cls=functools.partial(Stem, kernel=5, strides=2, max_pool=True))


registry.register('plain_resnet', plain_resnet)
registry.register('bottleneck96', bottleneck96)
registry.register('tutorial_resnet18', tutorial_resnet18)
registry.register('keras_resnet18', keras_resnet18)
registry.register('keras_resnet34', keras_resnet34)
