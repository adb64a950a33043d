"""PyTorch CIFAR ResNet weights as our variables, to evaluate or fine-tune published models.

The layout is akamaster/pytorch_resnet_cifar10's, which most PyTorch CIFAR ResNets
share: conv1, bn1, layer{s}.{i}.conv1/bn1/conv2/bn2, linear. Option-A blocks have no
shortcut tensors; option-B blocks add layer{s}.{i}.shortcut.0 (conv) and .1 (bn).
Usage:

  variables = cifar_resnet_variables(load_state_dict('resnet20-12fca82f.th'))
  check_compatible(jax.eval_shape(lambda: model.init(key, x, train=False)), variables)
"""

import re
from typing import Any, Mapping

import numpy as np
from flax import traverse_util

from resnet_flax.errors import UserError

_TOP_MODULES = {'conv1': ('stem', 'conv'), 'bn1': ('stem', 'bn'), 'linear': ('head',)}
_BLOCK_MODULE = re.compile(r'layer(\d+)\.(\d+)\.(conv1|bn1|conv2|bn2|shortcut\.0|shortcut\.1)')
_BLOCK_LAYERS = {'shortcut.0': ('shortcut', 'conv'), 'shortcut.1': ('shortcut', 'bn')}
_BN_LEAVES = {'weight': ('params', 'scale'), 'bias': ('params', 'bias'),
              'running_mean': ('batch_stats', 'mean'), 'running_var': ('batch_stats', 'var')}
_SHOWN = 5  # keys listed per kind of problem; the rest are counted


def cifar_resnet_variables(state_dict: Mapping[str, np.ndarray]) -> dict[str, Any]:
  """{'params': ..., 'batch_stats': ...} for our CIFAR ResNet from a PyTorch state dict.

  Tensors are converted to our layouts (convs OIHW -> HWIO, Linear (out, in) -> (in,
  out)) and to float32, the dtype of our variables. num_batches_tracked is dropped.
  Raises UserError naming the tensors that have no place in a CIFAR ResNet.
  """
  flat, strays = {}, []
  for name, value in state_dict.items():
    module, _, leaf = name.rpartition('.')
    path = _module_path(module)
    if path is not None and leaf == 'num_batches_tracked':
      continue
    converted = _convert(path, leaf, np.asarray(value)) if path is not None else None
    if converted is None:
      strays.append(f'{name} {tuple(np.shape(value))}')
      continue
    collection, leaf_name, array = converted
    flat[(collection, *path, leaf_name)] = np.asarray(array, np.float32)
  if strays:
    raise UserError(
        f'The state dict does not have the layout of a PyTorch CIFAR ResNet (conv1, bn1, '
        f'layer{{s}}.{{i}}.conv1/bn1/conv2/bn2[/shortcut.0/.1], linear): {len(strays)} tensor(s) '
        f'fit nowhere: {_some(strays)}.')
  return traverse_util.unflatten_dict(flat)


def _module_path(module: str) -> tuple[str, ...] | None:
  """Our module path for a torch module name ('layer2.0.bn1' -> stage2_block1/bn1), or None."""
  if module in _TOP_MODULES:
    return _TOP_MODULES[module]
  match = _BLOCK_MODULE.fullmatch(module)
  if match is None:
    return None
  stage, block, layer = match.groups()
  return (f'stage{stage}_block{int(block) + 1}', *_BLOCK_LAYERS.get(layer, (layer,)))


def _convert(path: tuple[str, ...], leaf: str,
             value: np.ndarray) -> tuple[str, str, np.ndarray] | None:
  """(collection, our leaf name, value in our layout) for one tensor, or None if it has no place."""
  kind = path[-1]
  if kind.startswith('conv') and leaf == 'weight' and value.ndim == 4:
    return 'params', 'kernel', value.transpose(2, 3, 1, 0)
  if kind.startswith('bn') and leaf in _BN_LEAVES and value.ndim == 1:
    return (*_BN_LEAVES[leaf], value)
  if kind == 'head' and leaf == 'weight' and value.ndim == 2:
    return 'params', 'kernel', value.T
  if kind == 'head' and leaf == 'bias' and value.ndim == 1:
    return 'params', 'bias', value
  return None


def check_compatible(expected_variables: Mapping[str, Any], variables: Mapping[str, Any]) -> None:
  """Raises UserError listing what differs, instead of a shape error deep inside `apply`.

  `expected_variables` is the model's own tree (e.g. from jax.eval_shape of its init);
  leaves of both only need a `.shape`.
  """
  expected = traverse_util.flatten_dict(expected_variables, sep='/')
  got = traverse_util.flatten_dict(variables, sep='/')
  missing = [k for k in expected if k not in got]
  unexpected = [k for k in got if k not in expected]
  mismatched = [f'{k} (model {tuple(expected[k].shape)}, checkpoint {tuple(got[k].shape)})'
                for k in expected if k in got and tuple(expected[k].shape) != tuple(got[k].shape)]
  problems = [f'{len(keys)} {what}: {_some(keys)}' for what, keys in (
      ('missing', missing), ('unexpected', unexpected), ('with other shapes', mismatched)) if keys]
  if problems:
    raise UserError(
        f'The checkpoint does not fit the model: {"; ".join(problems)}. Pick the model the '
        'checkpoint was trained as: its depth, its shortcut option (resnetN for option A, '
        'resnetN_b for option B) and its number of classes.')


def _some(items: list[str]) -> str:
  """The first few items, and how many more: enough to see the pattern without a wall of keys."""
  more = f' and {len(items) - _SHOWN} more' if len(items) > _SHOWN else ''
  return ', '.join(items[:_SHOWN]) + more
