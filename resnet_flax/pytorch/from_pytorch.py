"""PyTorch ResNet weights as our variables, to evaluate or fine-tune published models.

Three layouts share one mapping (conv1/bn1 -> stem, layer{s}.{i} -> stage{s}_block{i+1},
the projection -> shortcut/conv and shortcut/bn, the Linear -> head):

- akamaster/pytorch_resnet_cifar10's, which most PyTorch CIFAR ResNets share: conv1,
  bn1, layer{s}.{i}.conv1/bn1/conv2/bn2, linear. Option-A blocks have no shortcut
  tensors; option-B blocks add layer{s}.{i}.shortcut.0 (conv) and .1 (bn).
- torchvision's ResNet-18..152: bottlenecks add conv3/bn3, projections are
  layer{s}.{i}.downsample.0/.1 and the head is fc.
- kuangliu/pytorch-cifar's ResNet18..152: torchvision's blocks under akamaster's names
  (shortcut.0/.1, linear).

Usage:

  expected = jax.eval_shape(lambda: model.init(key, x, train=False))
  variables = load_pytorch_weights('resnet18-f37072fd.pth', expected)
  # or, for a 1000-class checkpoint fine-tuned on 10 classes:
  variables = load_pytorch_weights(path, expected, reinit_head=True,
                                   init_variables=model.init(key, x, train=False))
"""

import os
import re
from typing import Any, Mapping, NamedTuple

import numpy as np
import numpy.typing  # noqa: F401  (np.typing)
from flax import traverse_util

from resnet_flax.errors import UserError
from resnet_flax.pytorch.checkpoint import load_state_dict


class _Layout(NamedTuple):
  """The torch module names of one family of ResNets and where they go in ours."""
  description: str  # names the layout in error messages
  top: Mapping[str, tuple[str, ...]]
  block: re.Pattern[str]  # groups: stage, block index, layer


_STEM = {'conv1': ('stem', 'conv'), 'bn1': ('stem', 'bn')}
_BLOCK_LAYERS = {f'{name}.{i}': ('shortcut', layer) for name in ('shortcut', 'downsample')
                 for i, layer in enumerate(('conv', 'bn'))}
_CIFAR = _Layout(
    'a PyTorch CIFAR ResNet (conv1, bn1, layer{s}.{i}.conv1/bn1/conv2/bn2[/shortcut.0/.1], '
    'linear)',
    {**_STEM, 'linear': ('head',)},
    re.compile(r'layer(\d+)\.(\d+)\.(conv1|bn1|conv2|bn2|shortcut\.0|shortcut\.1)'))
# Accepts every name _CIFAR does, so a name that fits neither is one that does not fit this.
_TORCHVISION = _Layout(
    'a torchvision or kuangliu/pytorch-cifar ResNet (conv1, bn1, '
    'layer{s}.{i}.conv1/bn1/conv2/bn2[/conv3/bn3][/downsample.0/.1 or /shortcut.0/.1], '
    'fc or linear)',
    {**_STEM, 'fc': ('head',), 'linear': ('head',)},
    re.compile(r'layer(\d+)\.(\d+)\.(conv[123]|bn[123]|(?:downsample|shortcut)\.[01])'))
_LAYOUTS = (_CIFAR, _TORCHVISION)  # the narrower first; names both accept map alike
_BN_LEAVES = {'weight': ('params', 'scale'), 'bias': ('params', 'bias'),
              'running_mean': ('batch_stats', 'mean'), 'running_var': ('batch_stats', 'var')}
_SHOWN = 5  # keys listed per kind of problem; the rest are counted


def cifar_resnet_variables(state_dict: Mapping[str, np.ndarray]) -> dict[str, Any]:
  """{'params': ..., 'batch_stats': ...} for our CIFAR ResNet from a PyTorch state dict.

  Tensors are converted to our layouts (convs OIHW -> HWIO, Linear (out, in) -> (in,
  out)) and to float32, the dtype of our variables. num_batches_tracked is dropped.
  Raises UserError naming the tensors that have no place in a CIFAR ResNet.
  """
  return _variables(state_dict, _CIFAR)


def torchvision_resnet_variables(state_dict: Mapping[str, np.ndarray]) -> dict[str, Any]:
  """Our variables for resnetN(_imagenet) from a torchvision or kuangliu/pytorch-cifar state dict.

  Converted as cifar_resnet_variables does. Raises UserError naming the tensors that
  have no place in such a ResNet, or two that land in the same place (fc and linear).
  """
  return _variables(state_dict, _TORCHVISION)


def pytorch_variables(state_dict: Mapping[str, np.ndarray],
                      dtype: np.typing.DTypeLike = np.float32) -> dict[str, Any]:
  """Our variables from a state dict in any layout above, told apart by its tensor names.

  `dtype`: of the variables (float64 keeps a double-precision run's state exact).

  Saves the caller from knowing where a downloaded checkpoint came from. Raises
  UserError listing the first tensors whose names fit no layout.
  """
  modules = {name.rpartition('.')[0] for name in state_dict}
  for layout in _LAYOUTS:
    if all(_module_path(module, layout) is not None for module in modules):
      return _variables(state_dict, layout, dtype)
  unknown = [f'{name} {tuple(np.shape(value))}' for name, value in state_dict.items()
             if _module_path(name.rpartition('.')[0], _TORCHVISION) is None]
  raise UserError(
      f'The state dict is not of a ResNet layout we can read: {len(unknown)} tensor(s) fit '
      f'neither {_CIFAR.description} nor {_TORCHVISION.description}: {_some(unknown)}.')


def load_pytorch_weights(path: str | os.PathLike, expected_variables: Mapping[str, Any], *,
                         reinit_head: bool = False,
                         init_variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
  """Our model's variables from a PyTorch checkpoint file, checked against the model's tree.

  `expected_variables` is the model's own tree (leaves need only a `.shape`). With
  `reinit_head`, the checkpoint's head is replaced by the head of `init_variables`
  (the caller's fresh init), to fine-tune on another number of classes. Raises
  UserError if the file is unreadable, of no known layout, or does not fit the model.
  """
  variables = pytorch_variables(load_state_dict(path))
  if reinit_head:
    if init_variables is None:
      raise ValueError("reinit_head needs init_variables: their head replaces the checkpoint's")
    variables.setdefault('params', {})['head'] = init_variables['params']['head']
  check_compatible(expected_variables, variables)
  return variables


def _variables(state_dict: Mapping[str, np.ndarray], layout: _Layout,
               dtype: np.typing.DTypeLike = np.float32) -> dict[str, Any]:
  """The mapping itself, for one layout."""
  flat, sources, strays = {}, {}, []
  for name, value in state_dict.items():
    module, _, leaf = name.rpartition('.')
    path = _module_path(module, layout)
    if path is not None and leaf == 'num_batches_tracked':
      continue
    converted = _convert(path, leaf, np.asarray(value)) if path is not None else None
    if converted is None:
      strays.append(f'{name} {tuple(np.shape(value))}')
      continue
    collection, leaf_name, array = converted
    key = (collection, *path, leaf_name)
    if key in sources:
      raise UserError(f'{sources[key]} and {name} both map to {"/".join(key)}: the state dict '
                      'mixes two layouts (fc and linear, or downsample and shortcut).')
    sources[key] = name
    flat[key] = np.asarray(array, dtype)
  if strays:
    raise UserError(
        f'The state dict does not have the layout of {layout.description}: {len(strays)} '
        f'tensor(s) fit nowhere: {_some(strays)}.')
  return traverse_util.unflatten_dict(flat)


def _module_path(module: str, layout: _Layout) -> tuple[str, ...] | None:
  """Our module path for a torch module name ('layer2.0.bn1' -> stage2_block1/bn1), or None."""
  if module in layout.top:
    return layout.top[module]
  match = layout.block.fullmatch(module)
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
  reshaped = [k for k in expected if k in got and tuple(expected[k].shape) != tuple(got[k].shape)]
  mismatched = [f'{k} (model {tuple(expected[k].shape)}, checkpoint {tuple(got[k].shape)})'
                for k in reshaped]
  problems = [f'{len(keys)} {what}: {_some(keys)}' for what, keys in (
      ('missing', missing), ('unexpected', unexpected), ('with other shapes', mismatched)) if keys]
  if problems:
    head_differs = any(k.startswith('params/head/') for k in missing + reshaped)
    reinit = (' To fine-tune on another number of classes instead, pass reinit_head (config: '
              '--config.model.init_reinit_head=True).' if head_differs else '')
    raise UserError(
        f'The checkpoint does not fit the model: {"; ".join(problems)}. Pick the model the '
        'checkpoint was trained as: its depth, its stem (resnetN_imagenet for the 7x7 ImageNet '
        'stem), its shortcut option (resnetN for option A, resnetN_b for option B) and its '
        f'number of classes.{reinit}')


def _some(items: list[str]) -> str:
  """The first few items, and how many more: enough to see the pattern without a wall of keys."""
  more = f' and {len(items) - _SHOWN} more' if len(items) > _SHOWN else ''
  return ', '.join(items[:_SHOWN]) + more
