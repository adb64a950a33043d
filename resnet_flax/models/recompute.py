"""Recomputing a residual block in the backward pass (ResNet.remat_blocks): what it keeps.

'on' keeps only each block's input and runs the block's forward again in the backward pass
(PyTorch's checkpoint_sequential); 'convs' also keeps every conv's output, so only BatchNorm
and ReLU are recomputed: no conv runs twice, and the BN/ReLU outputs are not stored. Every mode
computes the same function and gradients (tests/test_layout.py).
"""

import functools
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name

from resnet_flax.models.layers import ModuleDef

# What a recomputed block keeps for its backward pass (ResNet.remat_blocks), beyond its input.
MODES = ('off', 'convs', 'on')
CONV_OUT = 'conv_out'  # the checkpoint name of every conv's output under remat 'convs'


def mode(value: bool | str) -> str:
  """ResNet.remat_blocks as one of MODES (True/False read as 'on'/'off')."""
  chosen = {True: 'on', False: 'off'}.get(value, value) if isinstance(value, bool) else value
  if chosen not in MODES:
    raise ValueError(f'remat_blocks={value!r} is not one of {MODES}')
  return chosen


def named(conv: ModuleDef) -> ModuleDef:
  """`conv` (a factory) whose modules' outputs carry the checkpoint name CONV_OUT."""
  def factory(*args, **kwargs) -> Callable[[jnp.ndarray], jnp.ndarray]:
    module = conv(*args, **kwargs)
    return lambda x: checkpoint_name(module(x), CONV_OUT)
  return factory


def recomputed(block_cls: ModuleDef, in_scan: bool, keep: str) -> ModuleDef:
  """`block_cls` under nn.remat: the backward pass runs the block's forward again from its input
  (`keep` 'on') or from its input and its convs' outputs ('convs': only BN and ReLU are
  recomputed).
  `train` is static; a scan body needs no CSE barrier."""
  partial = block_cls if isinstance(block_cls, functools.partial) else None
  cls = partial.func if partial else block_cls
  policy = jax.checkpoint_policies.save_only_these_names(CONV_OUT) if keep == 'convs' else None
  remat = nn.remat(cls, static_argnums=(2,), prevent_cse=not in_scan,  # (self, x, train)
                   policy=policy)
  return functools.partial(remat, *partial.args, **partial.keywords) if partial else remat
