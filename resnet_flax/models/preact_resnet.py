"""Pre-activation ResNets (He et al. 2016, "Identity Mappings in Deep Residual Networks").

`preact_resnet18`: kuangliu's CIFAR PreActResNet18 (64-512 wide, no final BN).
`preact_resnet110` (basic), `preact_resnet164` and `preact_resnet1001` (bottleneck): the
paper's CIFAR nets, 16/32/64 inner widths, with the final BN-ReLU before pooling.
Projection shortcuts are 1x1 convs on the pre-activated input.
"""

import functools

from resnet_flax.models import registry
from resnet_flax.models.cifar_resnet import CIFAR_WIDTHS, blocks_per_stage
from resnet_flax.models.resnet import (PreActBasicBlock, PreActBottleneckBlock, ResNet,
                                       ShortcutConv, Stem)

CONV_STEM = functools.partial(Stem, use_norm=False, activate=False)


def preact_resnet18(num_classes: int) -> ResNet:
  return ResNet(stage_sizes=(2, 2, 2, 2), widths=(64, 128, 256, 512), num_classes=num_classes,
                block_cls=PreActBasicBlock, shortcut_cls=ShortcutConv, stem_cls=CONV_STEM)


def preact_cifar(depth: int, bottleneck: bool, num_classes: int) -> ResNet:
  n = blocks_per_stage(depth, 3 if bottleneck else 2)
  return ResNet(stage_sizes=(n, n, n), widths=CIFAR_WIDTHS, num_classes=num_classes,
                block_cls=PreActBottleneckBlock if bottleneck else PreActBasicBlock,
                shortcut_cls=ShortcutConv, stem_cls=CONV_STEM, final_norm=True)


registry.register('preact_resnet18', preact_resnet18)
registry.register('preact_resnet110', functools.partial(preact_cifar, 110, False))
registry.register('preact_resnet164', functools.partial(preact_cifar, 164, True))
registry.register('preact_resnet1001', functools.partial(preact_cifar, 1001, True))
