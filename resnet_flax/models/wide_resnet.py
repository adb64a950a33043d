"""Wide ResNets WRN-d-k (Zagoruyko & Komodakis 2016): pre-activation basic blocks 16k/32k/64k wide.

d = 6n + 4; a 1x1 projection where the width changes; optional dropout between the
convs (`create_model('wrn28_10', ..., block_options={'dropout_rate': 0.3})`).
"""

import functools

from resnet_flax.models import registry
from resnet_flax.models.preact_resnet import CONV_STEM
from resnet_flax.models.resnet import PreActBasicBlock, ResNet, ShortcutConv


def wide_resnet(depth: int, widen: int, num_classes: int) -> ResNet:
  n, rest = divmod(depth - 4, 6)
  if rest or n < 1:
    raise ValueError(f'WRN depth must be 6n+4, got {depth}')
  return ResNet(stage_sizes=(n, n, n), widths=(16 * widen, 32 * widen, 64 * widen),
                num_classes=num_classes, stem_width=16, block_cls=PreActBasicBlock,
                shortcut_cls=ShortcutConv, stem_cls=CONV_STEM, final_norm=True)


for _depth, _widen in ((16, 4), (16, 8), (28, 2), (28, 10), (40, 4)):
  registry.register(f'wrn{_depth}_{_widen}', functools.partial(wide_resnet, _depth, _widen))
