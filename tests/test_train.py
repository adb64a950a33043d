"""End to end through `train_and_evaluate`, and the command line."""

import json
import os
import re
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from resnet_flax import train_and_evaluate
from resnet_flax.checkpoints.restore_run import restore_run
from tests.test_data import write_prepared_metadata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_metrics(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f]
  for r in records:
    r.pop('images_per_sec', None)  # wall-clock, never reproducible
  return records


def test_cifar10_end_to_end_through_tfds(tmp_path, make_config):
  write_prepared_metadata(tmp_path / 'data', 'cifar10', 40)
  config = make_config(**{'data.dataset': 'cifar10', 'data.data_dir': str(tmp_path / 'data'),
                          'batch_size': 8, 'eval_batch_size': 16, 'num_epochs': 1})
  with tfds.testing.mock_data(num_examples=40, policy=tfds.testing.MockPolicy.USE_FILES,
                              data_dir=str(tmp_path / 'data')):
    result = train_and_evaluate(config, str(tmp_path / 'run'))
  assert result['step'] == 5 and result['num_params'] == 75_290  # small_config's ResNet-8
  assert 0.0 <= result['test_accuracy'] <= 1.0 and np.isfinite(result['test_loss'])
  records = read_metrics(tmp_path / 'run')
  assert [r['step'] for r in records if 'loss' in r] == [1, 2, 3, 4, 5]
  assert os.listdir(tmp_path / 'run' / 'checkpoints') == ['5']


@pytest.mark.slow
def test_same_seed_is_bit_identical_and_other_seed_differs(tmp_path, make_config):
  runs = {}
  for name, seed in (('a', 0), ('b', 0), ('c', 1)):
    train_and_evaluate(make_config(seed=seed), str(tmp_path / name))
    runs[name] = read_metrics(tmp_path / name)
  assert runs['a'] == runs['b']
  assert runs['a'] != runs['c']


def test_resume_equals_an_uninterrupted_run(tmp_path, make_config):
  config = make_config(num_epochs=3)
  full = train_and_evaluate(config, str(tmp_path / 'full'))
  # Interrupt: keep only the epoch-1 checkpoint, as if the run died during epoch 2.
  shutil.copytree(tmp_path / 'full', tmp_path / 'cut')
  checkpoints = tmp_path / 'cut' / 'checkpoints'
  for step in ('6', '9'):
    shutil.rmtree(checkpoints / step)
  resumed = train_and_evaluate(config, str(tmp_path / 'cut'))
  assert resumed == full
  assert read_metrics(tmp_path / 'cut') == read_metrics(tmp_path / 'full')
  # A finished run is not trained again.
  assert train_and_evaluate(config, str(tmp_path / 'cut')) == full


@pytest.mark.slow
def test_digits_clearly_learns_in_bfloat16_with_float32_state(tmp_path):
  """bf16 mixed precision: compute in bfloat16; params, BN statistics and the loss in float32.

  (float32 digits training is the slow test below; every other test trains in float32.)
  """
  from configs import digits
  config = digits.get_config()
  config.num_epochs = 4
  config.progress_bar = False
  config.model.dtype = 'bfloat16'
  result = train_and_evaluate(config, str(tmp_path))
  assert result['test_accuracy'] > 0.8  # chance is 0.1
  assert np.isfinite(result['train_loss'])
  _, model, state, _ = restore_run(str(tmp_path))
  assert model.dtype == jnp.bfloat16
  dtypes = {x.dtype for x in jax.tree.leaves((state.params, state.batch_stats))}
  assert dtypes == {jnp.dtype('float32')}


@pytest.mark.slow
def test_validation_split_is_evaluated_and_can_choose_the_best_checkpoint(tmp_path, make_config,
                                                                           capsys):
  config = make_config(**{'data.validation_size': 16, 'checkpoint_best_metric': 'val_accuracy',
                          'model.name': 'resnet8'})
  result = train_and_evaluate(config, str(tmp_path))
  assert 'training data on the device' in capsys.readouterr().out  # 'auto' places a small set
  evals = [r for r in read_metrics(tmp_path) if 'test_loss' in r]
  assert len(evals) == 2 and all('val_accuracy' in r and 'val_top5_accuracy' in r for r in evals)
  assert 'val_loss' in result
  assert result['step'] == 2 * ((96 - 16) // 32)  # the held-out images are not trained on


@pytest.mark.slow
def test_profile_steps_writes_a_trace(tmp_path, make_config):
  train_and_evaluate(make_config(**{'profile_steps': 2, 'model.name': 'resnet8'}), str(tmp_path))
  assert list((tmp_path / 'profile').rglob('*.xplane.pb'))


@pytest.mark.slow
def test_digits_config_reaches_97_percent(tmp_path):
  from configs import digits
  config = digits.get_config()
  config.progress_bar = False
  assert train_and_evaluate(config, str(tmp_path))['test_accuracy'] >= 0.97


def run_train(*args, timeout=120, env=None):
  env = env or dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, 'train.py', *args], cwd=ROOT, env=env, timeout=timeout,
                        capture_output=True, text=True)


def test_misspelt_override_fails_naming_the_valid_keys(tmp_path):
  proc = run_train('--config', 'configs/digits.py', '--workdir', str(tmp_path),
                   '--config.optim.learnin_rate=0.3')
  assert proc.returncode == 2
  assert 'Did you mean config.optim.learning_rate' in proc.stderr
  assert 'momentum' in proc.stderr and 'Traceback' not in proc.stderr
  assert not os.listdir(tmp_path)


@pytest.mark.slow
def test_offline_without_data_stops_quickly_with_guidance(tmp_path):
  proc = run_train('--config', 'configs/default.py', '--workdir', str(tmp_path / 'run'),
                   f'--config.data.data_dir={tmp_path}', '--config.data.download=False',
                   timeout=60)
  assert proc.returncode == 2
  assert 'configs/digits.py' in proc.stderr and 'Traceback' not in proc.stderr


@pytest.mark.slow
def test_cli_trains_and_overrides_apply(tmp_path):
  # As a user's shell has it: no device count chosen, no compilation cache set outside the config.
  env = {k: v for k, v in os.environ.items() if k not in ('XLA_FLAGS', 'JAX_COMPILATION_CACHE_DIR')}
  proc = run_train('--config', 'configs/digits.py', '--workdir', str(tmp_path / 'run'),
                   '--config.data.dataset=synthetic', '--config.data.synthetic.image_size=16',
                   '--config.num_epochs=1', '--config.batch_size=32', '--config.eval_batch_size=64',
                   '--config.optim.label_smoothing=0.1',
                   f'--config.compilation_cache_dir={tmp_path / "cache"}', env=env)
  assert proc.returncode == 0, proc.stderr
  assert 'final test accuracy' in proc.stdout and 'training throughput' in proc.stdout
  # The defaults for a CPU: oneDNN's convs on one device using every core; compiled steps cached.
  assert "1 cpu device(s) (auto: one, as oneDNN's convolutions use every core)" in proc.stdout
  assert re.search(r'onednn convolutions \(oneDNN 3\.\d+\.\d+, auto\)', proc.stdout)
  assert f'compilation cache {tmp_path / "cache"}' in proc.stdout and os.listdir(tmp_path / 'cache')
  tmp_path = tmp_path / 'run'
  steps = [r['step'] for r in read_metrics(tmp_path) if 'loss' in r]
  assert steps[-1] == 1024 // 32
  # The end of a run: curves, TensorBoard events and results.json.
  for name in ('loss', 'accuracy', 'lr'):
    assert (tmp_path / 'plots' / f'{name}.png').read_bytes().startswith(b'\x89PNG\r\n\x1a\n')
  assert list((tmp_path / 'tensorboard').glob('events.out.tfevents.*'))
  results = json.loads((tmp_path / 'results.json').read_text())
  assert results['step'] == steps[-1] and 0 <= results['test_top5_accuracy'] <= 1


@pytest.mark.slow
def test_init_from_a_pytorch_checkpoint(tmp_path, make_config):
  """`--config.model.init_from=x.th` starts from those weights (lr 0 keeps them for the check)."""
  from resnet_flax.checkpoints.checkpointing import Checkpointer
  from resnet_flax.pytorch import from_pytorch
  from tests.test_pytorch_checkpoint import akamaster_state_dict, state_dict, write_checkpoint
  arrays = akamaster_state_dict(np.random.default_rng(0))
  write_checkpoint(tmp_path / 'resnet20.th', {'state_dict': state_dict(arrays)}, legacy=True)
  config = make_config(**{'model.name': 'resnet20', 'num_epochs': 1,  # the checkpoint's model
                          'model.init_from': str(tmp_path / 'resnet20.th'),
                          'optim.learning_rate': 0.0, 'optim.weight_decay': 0.0})
  train_and_evaluate(config, str(tmp_path / 'run'))
  expected = from_pytorch.cifar_resnet_variables(arrays)['params']
  ckpt = Checkpointer(str(tmp_path / 'run'), keep=1)
  restored = ckpt._manager.restore(ckpt.latest_step())['state']['params']
  jax.tree.map(np.testing.assert_array_equal, restored, expected)


def test_init_from_a_checkpoint_of_another_model_is_refused(tmp_path, make_config):
  from resnet_flax.errors import UserError
  from tests.test_pytorch_checkpoint import akamaster_state_dict, state_dict, write_checkpoint
  write_checkpoint(tmp_path / 'r32.th', state_dict(akamaster_state_dict(np.random.default_rng(0),
                                                                         depth=32)))
  config = make_config(**{'model.name': 'resnet20', 'model.init_from': str(tmp_path / 'r32.th')})
  with pytest.raises(UserError, match='missing|unexpected'):
    train_and_evaluate(config, str(tmp_path / 'run'))


def test_logged_throughput_leaves_out_evaluations_and_checkpoints():
  from resnet_flax.reporting.progress import Throughput  # pylint: disable=import-outside-toplevel
  clock = [0.0]
  waited = []

  class Output:  # a step's result; waiting on it is when its time is known
    def block_until_ready(self):
      waited.append(clock[0])
      return self

  timer = Throughput(batch_size=10, clock=lambda: clock[0])
  timer.tick(Output())  # the first step compiles: its time is not counted
  assert np.isnan(timer.rate())
  clock[0] = 1.0
  timer.tick(Output())
  clock[0] = 2.0  # the second step ends while the evaluation waits for it
  with timer.paused():
    clock[0] = 32.0  # 30 s of evaluation and checkpointing
  clock[0] = 33.0
  timer.tick(Output())
  assert timer.rate() == pytest.approx(20 / 3.0)  # 2 steps of 10 images in 3 s of training
  assert waited[-2:] == [2.0, 33.0]
  clock[0] = 38.0
  timer.tick(Output())
  assert timer.rate() == pytest.approx(10 / 5.0)  # the next interval starts where this one ended
