"""ResNeXt-29 for CIFAR (Xie et al. 2017): 3 stages x 3 grouped bottlenecks, outputs 256/512/1024.

CxWd: cardinality C, bottleneck width W per group in the first stage (doubling per stage).
"""

import functools

from resnet_flax.models import registry
from resnet_flax.models.resnet import BottleneckBlock, ResNet, ShortcutB

OUT_WIDTHS = (256, 512, 1024)


def resnext29(cardinality: int, width: int, num_classes: int) -> ResNet:
  inner = tuple(cardinality * width * 2 ** i for i in range(3))
  return ResNet(stage_sizes=(3, 3, 3), widths=inner, num_classes=num_classes, stem_width=64,
                block_cls=BottleneckBlock, shortcut_cls=ShortcutB,
                block_options={'groups': cardinality, 'expansion': OUT_WIDTHS[0] / inner[0]})


registry.register('resnext29_32x4d', functools.partial(resnext29, 32, 4))
registry.register('resnext29_8x64d', functools.partial(resnext29, 8, 64))
