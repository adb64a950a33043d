"""A checkpoint saved in one block layout restored into another (model.scan_blocks changed, or
'auto' decided differently): the state is read in the saved layout and converted."""

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import ml_collections

from resnet_flax.models import scan_layout
from resnet_flax.training.layout import block_layout

_BLOCK = re.compile(r'stage\d+_block(s|\d+)')
Convert = Callable[[Any], Any]


def _is_variables(x: Any) -> bool:
  """A model's variable tree (params, batch_stats, or an optimizer's copy of params)."""
  return isinstance(x, Mapping) and any(_BLOCK.fullmatch(str(k)) for k in x)


def convert(state: Any, stage_sizes: Sequence[int], scanned: bool) -> Any:
  """`state` (any pytree) with every variable tree in it in the scanned or unrolled layout."""
  to = scan_layout.to_scanned if scanned else scan_layout.to_unscanned

  def one(x: Any) -> Any:
    return to({'v': x}, stage_sizes)['v'] if _is_variables(x) else x
  return jax.tree.map(one, state, is_leaf=_is_variables)


def converters(saved_config: dict[str, Any], config: ml_collections.ConfigDict,
               stage_sizes: Sequence[int]) -> tuple[Convert, Convert]:
  """(to the saved layout, back to this run's): identities when the layouts agree."""
  saved = block_layout(ml_collections.ConfigDict(saved_config['model'])).scan
  current = block_layout(config.model).scan
  if saved == current:
    return (lambda s: s), (lambda s: s)
  return (lambda s: convert(s, stage_sizes, saved)), (lambda s: convert(s, stage_sizes, current))
