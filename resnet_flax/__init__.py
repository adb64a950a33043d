"""resnet_flax: faithful Flax ResNets for CIFAR-style data."""

from typing import Any

__all__ = ['train_and_evaluate']


def __getattr__(name: str) -> Any:
  """`train_and_evaluate` is imported on first use, so `resnet_flax.cpu.host_memory` and
  `resnet_flax.errors` load without JAX or TensorFlow (train.py sets the allocator first)."""
  if name == 'train_and_evaluate':
    from resnet_flax.training.trainer import train_and_evaluate  # pylint: disable=g-import-not-at-top
    return train_and_evaluate
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
