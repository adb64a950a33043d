"""resnet_flax: faithful Flax ResNets for CIFAR-style data."""

import os
import sys
from typing import Any

# TF_CPP_MIN_LOG_LEVEL as the user set it: JAX's import sets it to '1' when unset, so
# data/tf_cpu.py, which quiets TensorFlow unless the user asked for its logs, reads it here.
USER_TF_LOG_LEVEL = (None if 'jax' in sys.modules and os.environ.get('TF_CPP_MIN_LOG_LEVEL') == '1'
                     else os.environ.get('TF_CPP_MIN_LOG_LEVEL'))

__all__ = ['train_and_evaluate']


def __getattr__(name: str) -> Any:
  """`train_and_evaluate` is imported on first use, so `resnet_flax.cpu.host_memory` and
  `resnet_flax.errors` load without JAX or TensorFlow (train.py sets the allocator first)."""
  if name == 'train_and_evaluate':
    from resnet_flax.training.trainer import train_and_evaluate  # pylint: disable=g-import-not-at-top
    return train_and_evaluate
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
