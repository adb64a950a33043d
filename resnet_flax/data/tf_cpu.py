"""TensorFlow, imported lazily, kept off the GPU (JAX owns the accelerators) and without Keras.

Only tfds reading needs TF. TF 2.21's `import tensorflow` also imports Keras 3 eagerly (and
scikit-learn through Keras's wrappers), a large share of its import time (benchmarks/NOTES.md).
Keras is hidden while TF imports, so TF skips it; `tf.keras` and `import keras` still work
afterwards, loaded when first used.

TF's C++ logging (TF_CPP_MIN_LOG_LEVEL=2) and its Python logger (ERROR) are quiet unless the user
set TF_CPP_MIN_LOG_LEVEL: its start-up lines say nothing a resnet_flax user can act on.
"""

import contextlib
import functools
import logging
import os
import sys
import types
from collections.abc import Iterator


@functools.cache
def tensorflow() -> types.ModuleType:
  """Imports TF once and hides every GPU from it before any TF op can run."""
  from resnet_flax import USER_TF_LOG_LEVEL  # pylint: disable=g-import-not-at-top
  user_asked = USER_TF_LOG_LEVEL is not None
  if not user_asked:
    os.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'  # JAX's import sets '1' (INFO off, warnings on)
  with _keras_hidden() as hidden:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if not user_asked:
    logging.getLogger('tensorflow').setLevel(logging.ERROR)
  if hidden:
    _restore_keras_paths(tf)
  tf.config.set_visible_devices([], 'GPU')
  return tf


@contextlib.contextmanager
def _keras_hidden() -> Iterator[bool]:
  """`import keras` fails inside (a None entry in sys.modules), unless Keras is already loaded
  or TF already imported; yields whether it hid it."""
  hide = 'keras' not in sys.modules and 'tensorflow' not in sys.modules
  if hide:
    sys.modules['keras'] = None  # type: ignore[assignment]
  try:
    yield hide
  finally:
    if hide and sys.modules.get('keras', 0) is None:
      del sys.modules['keras']


def _restore_keras_paths(tf: types.ModuleType) -> None:
  """Puts back the Keras folders that TF's __init__ prepends to tf.__path__ (None while Keras
  was hidden), so `from tensorflow.keras import layers` resolves as it would have."""
  from tensorflow.python.tools import module_util  # pylint: disable=g-import-not-at-top
  legacy = os.environ.get('TF_USE_LEGACY_KERAS') in ('true', 'True', '1')
  api = 'tf_keras.api._v2.keras' if legacy else 'keras.api._v2.keras'
  found = [module_util.get_parent_dir_for_name(name) for name in (api, 'keras._tf_keras.keras')]
  tf.__path__[:] = [d for d in found if d] + [p for p in tf.__path__ if p is not None]
