"""Data: sources (tfds, digits, synthetic) and tf.data pipelines."""

from resnet_flax.data.pipeline import eval_batches, input_shape, steps_per_epoch, train_batches
from resnet_flax.data.sources import Dataset, Split, load_dataset

__all__ = ['Dataset', 'Split', 'eval_batches', 'input_shape', 'load_dataset', 'steps_per_epoch', 'train_batches']
