"""ResNet-18/34/50/101/152 (torchvision layout, option-B projections, stride on the 3x3).

`resnetN`: CIFAR stem (3x3 stride-1 conv, no max-pool), as kuangliu/pytorch-cifar.
`resnetN_imagenet`: the ImageNet stem (7x7 stride-2 conv + 3x3 stride-2 max-pool).
"""

import functools

from resnet_flax.models import registry
from resnet_flax.models.resnet import BasicBlock, BottleneckBlock, ResNet, ShortcutB, Stem

WIDTHS = (64, 128, 256, 512)
LAYOUTS = {18: ((2, 2, 2, 2), BasicBlock), 34: ((3, 4, 6, 3), BasicBlock),
           50: ((3, 4, 6, 3), BottleneckBlock), 101: ((3, 4, 23, 3), BottleneckBlock),
           152: ((3, 8, 36, 3), BottleneckBlock)}
IMAGENET_STEM = functools.partial(Stem, kernel=7, strides=2, max_pool=True)


def resnet(depth: int, imagenet_stem: bool, num_classes: int) -> ResNet:
  stage_sizes, block = LAYOUTS[depth]
  return ResNet(stage_sizes=stage_sizes, widths=WIDTHS, num_classes=num_classes,
                block_cls=block, shortcut_cls=ShortcutB,
                stem_cls=IMAGENET_STEM if imagenet_stem else Stem)


for _depth in LAYOUTS:
  registry.register(f'resnet{_depth}', functools.partial(resnet, _depth, False))
  registry.register(f'resnet{_depth}_imagenet', functools.partial(resnet, _depth, True))
