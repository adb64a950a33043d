"""How a ResNet's blocks are laid out, from `model.scan_blocks` and `model.remat_blocks`.

Unrolled blocks compile in time that grows faster than linearly with depth; scanned stages
(nn.scan over each stage's repeated blocks) compile in time flat in depth but step somewhat
slower on CPU. 'auto' scans the nets too deep to compile unrolled in reasonable time and
recomputes their BatchNorms and ReLUs in the backward pass, where activation memory grows with
depth; shallower nets, scanned or not, keep their activations, the faster step
(benchmarks/NOTES.md, "Depth"). Every choice computes the same function; scan_layout
converts variables between the layouts.
"""

import dataclasses
from typing import Any

import ml_collections

from resnet_flax import models
from resnet_flax.models import recompute
from resnet_flax.errors import UserError

CHOICES = {'scan_blocks': ('auto', 'on', 'off'), 'remat_blocks': ('auto', *recompute.MODES)}
# What remat 'auto' does for a net deeper than SCAN_ABOVE_BLOCKS: the convs' outputs kept, BN and
# ReLU recomputed (no conv runs twice, and ResNet-1202 at batch 128 takes less memory than
# PyTorch's); shallower nets keep all their activations (recomputing slows their step more).
AUTO_REMAT = 'convs'
_KEPT = {'off': 'activations kept for the backward pass',
         'convs': "conv outputs kept, BN and ReLU recomputed in the backward pass",
         'on': 'each block recomputed from its input in the backward pass'}
# 'auto' scans a net with more residual blocks than this in all (its unrolled compile
# passed a minute beyond it; every registered net up to ResNet-110 stays unrolled).
SCAN_ABOVE_BLOCKS = 64
_LEGACY = {True: 'on', False: 'off'}  # configs saved before 'auto' held booleans


@dataclasses.dataclass(frozen=True)
class BlockLayout:
  """`scan`: stages scanned; `remat`: what a block keeps for the backward pass (recompute.MODES);
  `why`: one line."""
  scan: bool
  remat: str
  why: str

  def fields(self) -> tuple[bool, str]:
    return self.scan, self.remat


def choice(cfg: ml_collections.ConfigDict, field: str) -> str:
  """`model.<field>` as one of CHOICES[field] (a saved config's True/False read as on/off)."""
  value = cfg.get(field, 'off')
  value = _LEGACY.get(value, value) if isinstance(value, bool) else value
  if value not in CHOICES[field]:
    raise UserError(f'--config.model.{field}={value!r} is not one of '
                    f'{", ".join(CHOICES[field])}: \'auto\' decides by depth, the others hold '
                    'for every model (configs/default.py says what each does).')
  return value


def num_blocks(model: Any) -> int:
  """Residual blocks in all (0 for a model without stages)."""
  return sum(getattr(model, 'stage_sizes', ()) or ())


def block_layout(cfg: ml_collections.ConfigDict) -> BlockLayout:
  """The layout `cfg` (config.model) asks for; 'auto' decides by the registered model's depth."""
  scan_choice, remat_choice = choice(cfg, 'scan_blocks'), choice(cfg, 'remat_blocks')
  blocks = num_blocks(models.create_model(cfg.name, num_classes=2))
  deep = blocks > SCAN_ABOVE_BLOCKS
  depth_why = f'auto: {blocks} blocks {">" if deep else "<="} {SCAN_ABOVE_BLOCKS}'
  if scan_choice == 'auto':
    scan = deep
    scan_why = (f'{depth_why}, '
                f'{"unrolled would compile for minutes" if deep else "unrolled steps faster"}')
  else:
    scan, scan_why = scan_choice == 'on', 'model.scan_blocks'
  if remat_choice == 'auto':
    remat, remat_why = (AUTO_REMAT if deep else 'off'), depth_why
  else:
    remat, remat_why = remat_choice, 'model.remat_blocks'
  where = 'scanned stages' if scan else 'unrolled blocks'
  return BlockLayout(scan, remat, f'{where} ({scan_why}), {_KEPT[remat]} ({remat_why})')
