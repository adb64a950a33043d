"""Convert ResNet variables between the unrolled and the `scan_blocks=True` layouts.

Unrolled, stage i has `stage{i}_block1` .. `stage{i}_block{n}`; scanned, blocks 2..n are one
`stage{i}_blocks` whose leaves are stacked on a new leading axis of length n-1. Converting
lets a checkpoint trained in one layout run in the other (fast compile vs. fast CPU steps).
"""

from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

Variables = Mapping[str, Mapping[str, Any]]


def to_scanned(variables: Variables, stage_sizes: Sequence[int]) -> dict[str, dict[str, Any]]:
  """Stacks `stage{i}_block{j}` for j >= 2 into `stage{i}_blocks`, in every collection."""
  out = {}
  for collection, tree in variables.items():
    tree = dict(tree)
    for i, n in enumerate(stage_sizes, 1):
      names = [f'stage{i}_block{j}' for j in range(2, n + 1)]
      present = [name in tree for name in names]
      if any(present) and not all(present):
        missing = [name for name, p in zip(names, present) if not p]
        raise ValueError(f'{collection!r} lacks {missing}: not an unrolled stage of {n} blocks')
      if names and all(present):
        tree[f'stage{i}_blocks'] = jax.tree.map(_stack, *(tree.pop(name) for name in names))
    out[collection] = tree
  return out


def to_unscanned(variables: Variables, stage_sizes: Sequence[int]) -> dict[str, dict[str, Any]]:
  """Splits `stage{i}_blocks` back into `stage{i}_block2` .. `stage{i}_block{n}`, in every collection."""
  out = {}
  for collection, tree in variables.items():
    tree = dict(tree)
    for i, n in enumerate(stage_sizes, 1):
      if f'stage{i}_blocks' not in tree:
        continue
      stacked = tree.pop(f'stage{i}_blocks')
      lengths = {x.shape[0] for x in jax.tree.leaves(stacked)}
      if lengths != {n - 1}:
        raise ValueError(f'{collection!r} stage{i}_blocks has leading axes {lengths}, expected {n - 1}')
      for j in range(2, n + 1):
        tree[f'stage{i}_block{j}'] = jax.tree.map(lambda x, k=j - 2: x[k], stacked)
    out[collection] = tree
  return out


def _stack(*leaves: Any) -> Any:
  """np.stack for numpy leaves (keeps float64 and host memory), jnp.stack otherwise."""
  if all(isinstance(x, np.ndarray) for x in leaves):
    return np.stack(leaves)
  return jnp.stack(leaves)
