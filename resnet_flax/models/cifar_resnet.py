"""He et al. (2016) CIFAR ResNets: 3 stages of n basic blocks at 16/32/64 channels, depth 6n+2."""

import functools

from resnet_flax.models import registry
from resnet_flax.models.resnet import ResNet, ShortcutA, ShortcutB

CIFAR_WIDTHS = (16, 32, 64)


def cifar_resnet(depth: int, shortcut: str, num_classes: int) -> ResNet:
  if (depth - 2) % 6:
    raise ValueError(f'CIFAR ResNet depth must be 6n+2, got {depth}')
  n = (depth - 2) // 6
  return ResNet(stage_sizes=(n, n, n), widths=CIFAR_WIDTHS, num_classes=num_classes,
                shortcut_cls={'A': ShortcutA, 'B': ShortcutB}[shortcut])


for _depth in (20, 32, 44, 56, 110, 1202):
  registry.register(f'resnet{_depth}', functools.partial(cifar_resnet, _depth, 'A'))
  registry.register(f'resnet{_depth}_b', functools.partial(cifar_resnet, _depth, 'B'))
