"""Data: sources (tfds, CIFAR pickles, digits, synthetic) and tf.data pipelines."""

from resnet_flax.data.dataset import Dataset, Split, check_image_shape, input_shape
from resnet_flax.data.pipeline import (eval_batches, normalization_mean, steps_per_epoch,
                                       train_batches)
from resnet_flax.data.sources import load_dataset

__all__ = ['Dataset', 'Split', 'check_image_shape', 'eval_batches', 'input_shape', 'load_dataset',
           'normalization_mean', 'steps_per_epoch', 'train_batches']
