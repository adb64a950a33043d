"""resnet_flax: faithful Flax ResNets for CIFAR-style data."""

from resnet_flax.trainer import train_and_evaluate

__all__ = ['train_and_evaluate']
