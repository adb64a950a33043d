"""Data: sources (tfds, CIFAR pickles, digits, synthetic), host batches, and the in-step batch
builder (preprocessing and augmentation in JAX)."""

from resnet_flax.data.dataset import Dataset, Split, check_image_shape, input_shape
from resnet_flax.data.host_batches import eval_batches, steps_per_epoch, train_batches
from resnet_flax.data.preprocess import Preprocess, data_record, normalization_mean
from resnet_flax.data.sources import load_dataset

__all__ = ['Dataset', 'Preprocess', 'Split', 'check_image_shape', 'data_record', 'eval_batches',
           'input_shape', 'load_dataset', 'normalization_mean', 'steps_per_epoch', 'train_batches']
