"""He et al. (2016) CIFAR ResNets: 3 stages of n basic blocks at 16/32/64 channels, depth 6n+2.

`resnetN` uses option-A (parameter-free) shortcuts as in the paper; `resnetN_b` uses
option-B projections (1x1 conv + BN) where the shape changes.
"""

import functools

from resnet_flax.models import registry
from resnet_flax.models.resnet import ResNet, ShortcutA, ShortcutB

CIFAR_WIDTHS = (16, 32, 64)


def blocks_per_stage(depth: int, layers_per_block: int) -> int:
  """n for a 3-stage CIFAR net of `depth` = layers_per_block * 3n + 2."""
  n, rest = divmod(depth - 2, 3 * layers_per_block)
  if rest or n < 1:
    raise ValueError(f'depth {depth} is not {3 * layers_per_block}n+2')
  return n


def cifar_resnet(depth: int, shortcut: str, num_classes: int) -> ResNet:
  n = blocks_per_stage(depth, 2)
  return ResNet(stage_sizes=(n, n, n), widths=CIFAR_WIDTHS, num_classes=num_classes,
                shortcut_cls={'A': ShortcutA, 'B': ShortcutB}[shortcut])


for _depth in (8, 20, 32, 44, 56, 110, 1202):  # resnet8 (n=1): the smallest, for quick checks
  registry.register(f'resnet{_depth}', functools.partial(cifar_resnet, _depth, 'A'))
  registry.register(f'resnet{_depth}_b', functools.partial(cifar_resnet, _depth, 'B'))
