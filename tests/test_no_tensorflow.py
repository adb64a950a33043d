"""TensorFlow is imported only to read tfds datasets: a digits run, `python -m
resnet_flax.evaluate` and `python -m resnet_flax.predict` never import it."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs argv[1] as a module's __main__ (or, for 'train', a short digits run) and, at exit, says
# whether TensorFlow was ever imported.
RUNNER = r'''
import atexit, runpy, sys
atexit.register(lambda: print('\ntensorflow imported:', 'tensorflow' in sys.modules))
what, args = sys.argv[1], sys.argv[2:]
if what == 'tf':
  from resnet_flax.data.tf_cpu import tensorflow
  tf = tensorflow()
  tf.constant(1.0) + 1.0  # starts TF's runtime, which logs its CPU features unless quiet
  tf.get_logger().warning('a warning from TF')
elif what == 'train':
  from tests.conftest import small_config
  from resnet_flax import train_and_evaluate
  train_and_evaluate(small_config(**{'data.dataset': 'digits', 'num_epochs': 1,
                                     'num_steps': 4, 'batch_size': 64, 'eval_batch_size': 120,
                                     'augment.flip': False, 'tensorboard': False,
                                     'write_plots': False}), args[0])
else:
  sys.argv = [what, *args]
  runpy.run_module(what, run_name='__main__')
'''


def run(*argv: str, **env: str) -> subprocess.CompletedProcess:
  environ = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
  result = subprocess.run([sys.executable, '-c', RUNNER, *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**environ, 'PYTHONPATH': ROOT, **env})
  assert result.returncode == 0, result.stderr[-3000:]
  return result


def imports_tensorflow(*argv: str) -> bool:
  result = run(*argv)
  last = result.stdout.strip().splitlines()[-1]
  assert last.startswith('tensorflow imported:'), result.stdout[-2000:]
  return last.endswith('True')


@pytest.mark.slow
def test_digits_run_evaluate_and_predict_never_import_tensorflow(tmp_path):
  workdir = str(tmp_path / 'run')
  assert not imports_tensorflow('train', workdir)
  assert os.path.exists(os.path.join(workdir, 'results.json'))
  assert not imports_tensorflow('resnet_flax.evaluate', '--workdir', workdir)
  batch = tmp_path / 'batch.npy'
  np.save(batch, np.random.default_rng(0).integers(0, 256, (3, 8, 8, 1), dtype=np.uint8))  # resized
  assert not imports_tensorflow('resnet_flax.predict', '--workdir', workdir, str(batch))


@pytest.mark.slow
def test_tensorflow_is_quiet_unless_asked():
  """TF's C++ start-up lines and Python warnings are off by default (and the runner sees TF)."""
  quiet = run('tf')
  assert quiet.stdout.strip().endswith('tensorflow imported: True')
  assert 'tensorflow' not in quiet.stderr.lower() and 'a warning from TF' not in quiet.stderr, (
      quiet.stderr)
  asked = run('tf', TF_CPP_MIN_LOG_LEVEL='0')
  assert 'a warning from TF' in asked.stderr, asked.stderr
