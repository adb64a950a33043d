"""TensorBoard event files: the tags and values written can be read back by TensorBoard itself."""

import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.util import tensor_util

from resnet_flax.reporting import tensorboard
from tests.conftest import small_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = [{'step': s, 'epoch': s / 3, 'loss': 2.0 / s, 'accuracy': 0.1 * s, 'learning_rate': 0.1,
          'images_per_sec': 200.0 + s} for s in (1, 2, 3)]
TEST = {'step': 3, 'epoch': 1, 'test_loss': 1.5, 'test_accuracy': 0.25}
FINAL = {'test_loss': 1.5, 'test_accuracy': 0.25, 'train_loss': 0.67, 'train_accuracy': 0.3,
         'step': 3, 'num_params': 269722}


def read_events(directory):
  events = EventAccumulator(directory, size_guidance={'tensors': 0})
  events.Reload()
  return events


def values(events, tag):
  return {e.step: float(tensor_util.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)}


@pytest.fixture(scope='module')
def written(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('run'))
  config = small_config()
  with tensorboard.TensorBoardWriter(workdir) as writer:
    for record in TRAIN + [TEST]:
      writer.record(record)
    writer.hparams(config, FINAL)
  return workdir, config, read_events(os.path.join(workdir, 'tensorboard'))


def test_event_files_hold_train_test_and_final_tags(written):
  _, _, events = written
  assert set(events.Tags()['tensors']) == {
      'train/loss', 'train/accuracy', 'train/learning_rate', 'train/images_per_sec',
      'test/loss', 'test/accuracy', '_hparams_/session_start_info',
      *(f'final/{k}' for k in FINAL if k != 'step')}


def test_scalar_values_and_steps_round_trip(written):
  _, _, events = written
  assert values(events, 'train/loss') == pytest.approx({s: 2.0 / s for s in (1, 2, 3)})
  assert values(events, 'train/images_per_sec') == {1: 201.0, 2: 202.0, 3: 203.0}
  assert values(events, 'test/accuracy') == {3: 0.25}
  assert values(events, 'final/num_params') == {3: 269722.0}


def test_hparams_are_the_flattened_config(written):
  _, config, events = written
  content = events.SummaryMetadata('_hparams_/session_start_info').plugin_data.content
  hparams = hparams_metadata.parse_session_start_info_plugin_data(content).hparams
  assert hparams['optim.learning_rate'].number_value == pytest.approx(config.optim.learning_rate)
  assert hparams['model.name'].string_value == config.model.name
  assert hparams['progress_bar'].bool_value is False
  assert hparams['optim.milestones'].string_value == str(config.optim.milestones)
  assert len(hparams) == len(tensorboard.flatten_config(config))


def test_flatten_config_keeps_plain_values_and_strings_the_rest():
  flat = tensorboard.flatten_config({'a': {'b': 1, 'c': (1, 2)}, 'd': None, 'e': np.float32(0.5),
                                     'f': True})
  assert flat == {'a.b': 1, 'a.c': '(1, 2)', 'd': 'None', 'e': np.float32(0.5), 'f': True}


def test_only_process_zero_writes(tmp_path, monkeypatch):
  monkeypatch.setattr(jax, 'process_index', lambda: 1)
  writer = tensorboard.TensorBoardWriter(str(tmp_path))
  writer.record(TRAIN[0])
  writer.hparams(small_config(), FINAL)
  writer.close()
  assert not os.listdir(tmp_path)


# A fresh interpreter, as train.py starts: the writer needs no TensorFlow and the data
# pipeline's TF leaves Keras unloaded (each import would slow every start; benchmarks/NOTES.md),
# while TF's Keras still works for whoever asks for it later.
_WITHOUT_KERAS = '''
import sys
from resnet_flax.data.tf_cpu import tensorflow
from resnet_flax.reporting.tensorboard import TensorBoardWriter
with TensorBoardWriter(sys.argv[1]) as writer:
  writer.scalars(1, {'loss': 0.5}, 'train')
  writer.hparams({'optim': {'learning_rate': 0.1}}, {'step': 1, 'accuracy': 0.9})
assert 'tensorflow' not in sys.modules
tf = tensorflow()
assert [int(b.sum()) for b in tf.data.Dataset.range(4).batch(2).as_numpy_iterator()] == [1, 5]
loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'sklearn'))
assert not loaded, loaded[:5]
assert None not in tf.__path__, tf.__path__
from tensorflow.keras.layers import Dense
import keras
assert Dense is keras.layers.Dense and tf.keras.layers.Dense is Dense
print('ok')
'''


@pytest.mark.slow
def test_the_writer_needs_no_tensorflow_and_tensorflow_no_keras(tmp_path):
  done = subprocess.run([sys.executable, '-c', _WITHOUT_KERAS, str(tmp_path)], cwd=ROOT,
                        capture_output=True, text=True, timeout=300, check=False)
  assert done.returncode == 0 and done.stdout.strip() == 'ok', done.stderr[-3000:]
  assert read_events(os.path.join(tmp_path, 'tensorboard')).Tensors('train/loss')
