"""TensorFlow, imported lazily and kept off the GPU: JAX owns the accelerators."""

import functools
import os
import types


@functools.cache
def tensorflow() -> types.ModuleType:
  """Imports TF once and hides every GPU from it before any TF op can run."""
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], 'GPU')
  return tf
