"""What a ResNet's convs and BatchNorms are computed with: chosen by whoever builds the model.

The model itself knows no kernels or backends; `plain` gives the pure-JAX parts, which run on
any backend, and a runtime (on the CPU: resnet_flax/cpu/runtime.py) may hand in others.
"""

import dataclasses

import flax.linen as nn

from resnet_flax.models import layers
from resnet_flax.models.layers import ModuleDef


@dataclasses.dataclass(frozen=True)
class ModelParts:
  """`conv`: a factory with layers.conv's signature; `norm`: a BatchNorm class (nn.BatchNorm's
  fields and variables); `why`: one line saying what was chosen and why, for the run's log."""
  conv: ModuleDef = layers.conv
  norm: ModuleDef = nn.BatchNorm
  why: str = 'xla convolutions, flax BatchNorm'

  def fields(self) -> dict[str, ModuleDef]:
    """The ResNet fields these parts set."""
    return {'conv': self.conv, 'norm': self.norm}


def plain(scan_blocks: bool = False, recompute_bn: bool = False,
          unbiased_running_var: bool = False) -> ModelParts:
  """lax's convs and flax's BatchNorm (models/batch_norm.py's if `recompute_bn`, or if
  `unbiased_running_var`: PyTorch's running variance, which flax's cannot give).

  With `scan_blocks` the convs get a hand-written backward pass (layers.scan_conv): autodiff's
  gradient convs inside an nn.scan body miss XLA:CPU's fast kernels, and the hand-written ones
  compute the same function and gradients on every backend.
  """
  conv, conv_why = ((layers.scan_conv, 'with a hand-written backward in scanned stages')
                    if scan_blocks else (layers.conv, 'lax'))
  if recompute_bn:
    norm, norm_why = layers.RecomputedBatchNorm, 'recomputed BatchNorm'
  elif unbiased_running_var:
    norm, norm_why = layers.UnfusedBatchNorm, 'BatchNorm with autodiff backward'
  else:
    norm, norm_why = nn.BatchNorm, 'flax BatchNorm'
  return ModelParts(conv, norm, f'xla convolutions ({conv_why}), {norm_why}')
