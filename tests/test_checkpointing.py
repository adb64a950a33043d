"""Checkpoints that never lose work: kills, preemption, corruption, other runs, device counts."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import orbax.checkpoint as ocp
import pytest

from resnet_flax import train_and_evaluate
from resnet_flax.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 96 synthetic 32x32 images, batch 16: 6 steps an epoch, 3 epochs. Checkpoints every 4 steps
# and at epoch ends; metrics every 5 steps, so resumes land inside a logging window. A ResNet-8:
# what is saved and restored is the same kind of state as a ResNet-20's, quicker to compile.
CLI_FLAGS = ['--config', 'configs/default.py', '--config.model.name=resnet8',
             '--config.parallel.cpu_devices=1',  # this process (one device) reads the checkpoints
             '--config.data.dataset=synthetic',
             '--config.data.synthetic.num_train=96', '--config.data.synthetic.num_test=40',
             '--config.batch_size=16', '--config.eval_batch_size=8', '--config.num_epochs=3',
             '--config.optim.schedule=cosine', '--config.checkpoint_every_steps=4',
             '--config.log_every_steps=5', '--config.progress_bar=False']


def metrics(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f]
  for r in records:
    r.pop('images_per_sec', None)
  return records


def final_params(workdir):
  steps = sorted(int(d) for d in os.listdir(os.path.join(workdir, 'checkpoints')) if d.isdigit())
  path = os.path.join(workdir, 'checkpoints', str(steps[-1]), 'state')
  return steps[-1], ocp.StandardCheckpointer().restore(path)['params']


def assert_same_run(a, b):
  assert metrics(a) == metrics(b)
  step_a, params_a = final_params(a)
  step_b, params_b = final_params(b)
  assert step_a == step_b
  import jax
  jax.tree.map(np.testing.assert_array_equal, params_a, params_b)


def start(workdir, *extra, env=None):
  return subprocess.Popen([sys.executable, 'train.py', '--workdir', str(workdir), *CLI_FLAGS, *extra],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', **(env or {})))


def run(workdir, *extra, env=None, timeout=240):
  proc = start(workdir, *extra, env=env)
  out, err = proc.communicate(timeout=timeout)
  return proc.returncode, out, err


def logged_steps(workdir):
  try:
    with open(os.path.join(workdir, 'metrics.jsonl')) as f:
      return [json.loads(line)['step'] for line in f]
  except (FileNotFoundError, json.JSONDecodeError):
    return []


def saving(workdir):
  directory = os.path.join(workdir, 'checkpoints')
  return os.path.isdir(directory) and any('tmp' in d for d in os.listdir(directory))


def wait_until(condition, proc, timeout=240):
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if condition():
      return True
    if proc.poll() is not None:
      return False
    time.sleep(0.005)
  raise TimeoutError


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('uninterrupted')
  code, _, err = run(workdir)
  assert code == 0, err
  return workdir


KILL_POINTS = {
    'mid-epoch': lambda w: any(s >= 5 for s in logged_steps(w)),  # after step 5, mid epoch 1
    'epoch-boundary': lambda w: any(s == 12 for s in logged_steps(w)),  # at the end of epoch 2
    'during-async-save': saving,  # while a checkpoint's temporary directory exists
}


@pytest.mark.parametrize('point', [
    'mid-epoch', pytest.param('epoch-boundary', marks=pytest.mark.slow),
    pytest.param('during-async-save', marks=pytest.mark.slow)])
@pytest.mark.slow
def test_kill_9_then_rerun_is_bit_identical(point, tmp_path, uninterrupted):
  proc = start(tmp_path)
  reached = wait_until(lambda: KILL_POINTS[point](tmp_path), proc)
  proc.kill()
  proc.communicate()
  assert reached, 'the run finished before the kill point'
  code, _, err = run(tmp_path)
  assert code == 0, err
  assert_same_run(tmp_path, uninterrupted)


@pytest.mark.slow
def test_sigterm_saves_exits_0_and_resumes(tmp_path, uninterrupted):
  proc = start(tmp_path)
  assert wait_until(lambda: any(s >= 5 for s in logged_steps(tmp_path)), proc)
  proc.send_signal(signal.SIGTERM)
  out, err = proc.communicate(timeout=120)
  assert proc.returncode == 0, err
  assert 'Preempted: saved step' in out
  saved = int(out.split('Preempted: saved step ')[1].split()[0])
  assert 5 <= saved < 18 and os.path.isdir(tmp_path / 'checkpoints' / str(saved))
  code, out, err = run(tmp_path)
  assert code == 0 and 'Resumed from' in out, err
  assert_same_run(tmp_path, uninterrupted)


def damage(directory, how):
  """'truncate': every file cut to a third; 'truncate-data'/'zero-data': only the array data
  (state/**/d/*), so that orbax gets past the metadata and fails inside TensorStore's reads."""
  for root, _, files in os.walk(directory):
    for name in files:
      path = os.path.join(root, name)
      if how != 'truncate' and f'{os.sep}d{os.sep}' not in path:
        continue
      size = os.path.getsize(path)
      with open(path, 'r+b') as f:
        if how == 'zero-data':
          f.write(bytes(size))
        else:
          f.truncate(size // 3)


@pytest.mark.parametrize('how', [
    'truncate-data', pytest.param('zero-data', marks=pytest.mark.slow),
    pytest.param('truncate', marks=pytest.mark.slow)])
def test_corrupt_newest_checkpoint_is_set_aside_in_one_line(tmp_path, uninterrupted, how):
  shutil.copytree(uninterrupted, tmp_path, dirs_exist_ok=True)
  newest = tmp_path / 'checkpoints' / '18'
  shutil.rmtree(tmp_path / 'checkpoints' / '16')  # a gap, as if 16 was pruned
  damage(newest / 'state', how)  # a half-copied or damaged checkpoint
  code, out, err = run(tmp_path)
  assert code == 0, err
  assert 'Traceback' not in out + err and 'tensorstore_spec' not in out + err, err[-3000:]
  warnings = [line for line in (out + err).splitlines() if 'warning' in line.lower()
              or line.startswith('W')]
  assert len(warnings) == 1 and 'cannot be read' in warnings[0], warnings
  assert f'Checkpoint 18 in {tmp_path / "checkpoints"}' in warnings[0]
  assert f'moved it to {tmp_path / "corrupt_checkpoints"}' in warnings[0]
  assert 'Resumed from' in out
  assert os.listdir(tmp_path / 'corrupt_checkpoints')[0].startswith('18-')
  assert_same_run(tmp_path, uninterrupted)


@pytest.mark.slow
def test_checkpoint_of_another_run_is_refused_and_kept(tmp_path, make_config):
  config = make_config(num_epochs=1, **{'optim.schedule': 'constant'})
  train_and_evaluate(config, str(tmp_path))
  before = {p: os.path.getmtime(os.path.join(r, p)) for r, _, fs in os.walk(tmp_path) for p in fs}
  other = make_config(num_epochs=1, **{'optim.schedule': 'constant', 'model.name': 'resnet32',
                                       'optim.learning_rate': 0.05})
  with pytest.raises(UserError, match=r"model.name: 'resnet8' -> 'resnet32'.*learning_rate"):
    train_and_evaluate(other, str(tmp_path))
  after = {p: os.path.getmtime(os.path.join(r, p)) for r, _, fs in os.walk(tmp_path) for p in fs}
  assert before == after
  longer = make_config(num_epochs=2, **{'optim.schedule': 'constant'})  # a resumption
  assert train_and_evaluate(longer, str(tmp_path))['step'] == 6


@pytest.mark.parametrize('metric,values,best', [
    ('test_accuracy', [0.5, 0.9, 0.3, 0.4, 0.2], 2), ('test_loss', [0.5, 0.1, 0.3, 0.4, 0.2], 2)])
def test_keeps_newest_and_best(tmp_path, make_config, metric, values, best):
  import jax
  from resnet_flax.training import build
  from resnet_flax.checkpoints.checkpointing import Checkpointer
  config = make_config()
  model = build.create_model(config.model, 10)
  state, _, _ = build.create_state(config, model, (8, 8, 3), 1)
  ckpt = Checkpointer(str(tmp_path), keep=2, keep_best=1, best_metric=metric)
  for step, value in enumerate(values, 1):
    ckpt.save(state.replace(step=jax.numpy.array(step)), {'step': step}, metrics={metric: value})
    ckpt.wait()
  assert ckpt.steps() == sorted({best, len(values) - 1, len(values)})


def test_unwritable_workdir_fails_at_start(tmp_path, make_config):
  (tmp_path / 'file').write_text('not a directory')
  with pytest.raises(UserError, match='Cannot write to --workdir'):
    train_and_evaluate(make_config(), str(tmp_path / 'file' / 'run'))


@pytest.mark.slow
def test_device_count_changes(tmp_path):
  """Written on 4 devices; re-evaluated on 1 and continued on 2."""
  four = '--config.parallel.cpu_devices=4'  # the last override wins over CLI_FLAGS' 1
  constant = '--config.optim.schedule=constant'  # a cosine run cannot be extended
  code, out, err = run(tmp_path, '--config.num_epochs=1', constant, four)
  assert code == 0 and '4 cpu device(s)' in out, err
  on_four = [r for r in metrics(tmp_path) if 'test_loss' in r][-1]
  code, out, err = run(tmp_path, '--config.num_epochs=1', constant)  # finished: evaluates
  assert code == 0 and '1 cpu device(s)' in out and 'Resumed from' in out, err
  on_one = json.loads((tmp_path / 'results.json').read_text())['test_loss']
  assert on_one == pytest.approx(on_four['test_loss'], abs=1e-4)
  code, out, err = run(tmp_path, '--config.num_epochs=2', constant, '--config.parallel.cpu_devices=2')
  assert code == 0 and '2 cpu device(s)' in out, err
  assert [r['step'] for r in metrics(tmp_path) if 'loss' in r][-1] == 12


def test_cosine_runs_cannot_be_extended(make_config):
  from resnet_flax.checkpoints import resume
  saved = make_config(num_epochs=2).to_dict()
  assert resume.config_differences(saved, make_config(num_epochs=2)) == []
  diffs = resume.config_differences(saved, make_config(num_epochs=4))
  assert len(diffs) == 1 and diffs[0].startswith('num_epochs: 2 -> 4')
  step_saved = make_config(num_epochs=2, **{'optim.schedule': 'step'}).to_dict()
  assert resume.config_differences(
      step_saved, make_config(num_epochs=4, **{'optim.schedule': 'step'})) == []


def test_when_no_checkpoint_restores_nothing_is_moved(tmp_path, uninterrupted):
  shutil.copytree(uninterrupted, tmp_path, dirs_exist_ok=True)
  before = sorted(os.listdir(tmp_path / 'checkpoints'))
  for step in before:  # every record unreadable: e.g. written by other code
    if step.isdigit():
      (tmp_path / 'checkpoints' / step / 'meta' / 'metadata').write_text('{not json')
  code, _, err = run(tmp_path)
  assert code == 2 and 'could be restored' in err and 'Nothing was moved' in err
  assert sorted(os.listdir(tmp_path / 'checkpoints')) == before
  assert not (tmp_path / 'corrupt_checkpoints').exists()


@pytest.mark.parametrize('key', ['eval_every_epochs', 'checkpoint_every_epochs',
                                 'log_every_steps', 'checkpoint_keep'])
def test_zero_intervals_are_refused_at_start(tmp_path, make_config, key):
  with pytest.raises(UserError, match=f'{key}=0 must be at least 1'):
    train_and_evaluate(make_config(**{key: 0}), str(tmp_path))


def test_metrics_log_survives_a_cut_last_line(tmp_path):
  from resnet_flax.reporting.metrics_log import MetricsLog
  log = MetricsLog(str(tmp_path))
  log.write({'step': 1, 'loss': 1.0}, 'one')
  log.write({'step': 2, 'loss': 0.5}, 'two')
  with open(log.path, 'a') as f:
    f.write('{"step": 3, "lo')  # killed mid-write
  assert [r['step'] for r in log.read()] == [1, 2]
  log.drop_after(1)
  assert [r['step'] for r in log.read()] == [1]


@pytest.mark.slow
def test_an_init_from_error_exits_without_thread_tracebacks(tmp_path):
  """The error comes after the checkpoint manager started its threads: it is closed first."""
  bad = tmp_path / 'bad.pth'
  bad.write_bytes(b'not a pytorch checkpoint')
  for attempt in range(4):  # orbax's threads raced interpreter shutdown in some runs, not all
    code, out, err = run(tmp_path / 'run', f'--config.model.init_from={bad}')
    assert code == 2 and err.startswith('error: ') and 'bad.pth' in err, err
    assert 'Traceback' not in out + err and 'cannot schedule new futures' not in err, (attempt, err)
