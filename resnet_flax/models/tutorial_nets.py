"""Residual nets that TF/Keras/PyTorch lessons teach, so that ported lessons run unchanged.

`plain_resnet`: no BatchNorm; 3x3 conv stem (32) + ReLU; stages [2, 3, 3, 2] at
  32/64/128/256; blocks of two biased 3x3 convs, ReLU after each; shortcut 2x2 average
  pool + zero channel padding where the width doubles. 32x32 in -> 4x4x256 features.
`bottleneck96`: for 96x96 inputs: 5x5 stride-2 conv (32) + BN-ReLU + 3x3 stride-2 max-pool
  (48x48x32 before the pool), two bottlenecks to 128 (24x24x128), two to 512 with
  stride 2 (12x12x512); projection shortcuts.
ResNet-18 with the ImageNet stem and ResNet-18/34 with the CIFAR stem, which the other two
lessons use, are `resnet18_imagenet`, `resnet18` and `resnet34`.
"""

import functools

from resnet_flax.models import registry
from resnet_flax.models.resnet import (BottleneckBlock, PlainBlock, ResNet, ShortcutB,
                                       ShortcutPool, Stem)


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
