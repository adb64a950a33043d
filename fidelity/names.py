"""Our variables from a reference state dict, by the layout its module names follow.

'pytorch': the layouts our PyTorch importer reads (akamaster's, kuangliu's, torchvision's),
through the importer itself. 'ours': torch modules named as our variables
('stage1_block1.conv1.weight' is params/stage1_block1/conv1/kernel), for references whose own
names fit no importer layout (the WRN code's functional net). 'keras': our flattened paths
already ('params/stem/conv/kernel'), in our layouts (fidelity/keras_nets.py names them).
"""

from typing import Any, Mapping

import numpy as np
from flax import traverse_util

from resnet_flax.pytorch import from_pytorch


def variables(state_dict: Mapping[str, np.ndarray], layout: str,
              dtype: np.typing.DTypeLike) -> dict[str, Any]:
  """{'params': ..., 'batch_stats': ...} in `dtype`."""
  if layout == 'pytorch':
    return from_pytorch.pytorch_variables(state_dict, dtype)
  if layout == 'keras':
    return traverse_util.unflatten_dict(
        {tuple(k.split('/')): np.asarray(v, dtype) for k, v in state_dict.items()})
  flat = {}
  for name, value in state_dict.items():
    *path, leaf = name.split('.')
    value = np.asarray(value, dtype)
    if leaf == 'weight' and value.ndim == 4:  # conv OIHW -> HWIO
      flat[('params', *path, 'kernel')] = value.transpose(2, 3, 1, 0)
    elif leaf == 'weight' and value.ndim == 2:  # Linear (out, in) -> (in, out)
      flat[('params', *path, 'kernel')] = value.T
    elif leaf in ('weight', 'bias'):  # BN weight is our scale
      flat[('params', *path, 'scale' if leaf == 'weight' else 'bias')] = value
    elif leaf in ('running_mean', 'running_var'):
      flat[('batch_stats', *path, leaf.removeprefix('running_'))] = value
    else:
      raise ValueError(f'{name}: no place among our variables')
  return traverse_util.unflatten_dict(flat)
