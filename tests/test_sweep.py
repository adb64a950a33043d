"""Sweeps: trial expansion and names, the local launcher (with a stand-in train.py, then for real),
the generated SLURM script, and the result tables."""

import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import matplotlib.image
import pytest

from configs import default
from resnet_flax import sweep
from resnet_flax.errors import UserError
from resnet_flax.sweep import cli, local, results, slurm
from resnet_flax.reporting.tensorboard import flatten_config
from tests.conftest import small_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'

# Stands in for train.py where the launcher, not training, is under test: it records its
# arguments and environment, fails for learning rate 0.3, and derives its accuracy from lr and seed.
FAKE_TRAIN = '''
import json, os, sys
args = sys.argv[1:]
workdir = args[args.index('--workdir') + 1]
overrides = dict(a[len('--config.'):].split('=', 1) for a in args if a.startswith('--config.'))
os.makedirs(workdir, exist_ok=True)
print('fake train.py', ' '.join(args))
if overrides['optim.learning_rate'] == '0.3':
  print('error: this learning rate diverges.', file=sys.stderr)
  sys.exit(3)
accuracy = float(overrides['optim.learning_rate']) + int(overrides.get('seed', 0)) / 100
with open(os.path.join(workdir, 'metrics.jsonl'), 'w') as f:
  f.write(json.dumps({'step': 1, 'epoch': 1, 'test_loss': 1.0, 'test_accuracy': accuracy + 0.05}))
  f.write('\\n' + json.dumps({'step': 2, 'epoch': 2, 'test_loss': 1.0, 'test_accuracy': accuracy}))
with open(os.path.join(workdir, 'results.json'), 'w') as f:
  json.dump({'test_accuracy': accuracy, 'test_loss': 1 - accuracy, 'train_accuracy': 0.5,
             'train_loss': 0.5, 'step': 2, 'num_params': 10,
             'cuda': os.environ.get('CUDA_VISIBLE_DEVICES')}, f)
'''


def read(path):
  with open(path) as f:
    return f.read()


def read_bytes(path):
  with open(path, 'rb') as f:
    return f.read()


def write_sweep(path, body):
  path.write_text('from resnet_flax.sweep import *  # noqa\n\n\n'
                  f'def get_sweep():\n  return {body}\n')
  return str(path)


def small_overrides(**changes):
  """The config fields tests/conftest.py's small_config() changes, as sweep `fixed` overrides."""
  base, small = flatten_config(default.get_config()), flatten_config(small_config())
  fixed = {k: v for k, v in small.items() if base[k] != v}
  return fixed | changes


# --- trials and names ---------------------------------------------------------------------------

def test_trials_are_grid_times_random_draws_times_seeds(tmp_path):
  path = write_sweep(tmp_path / 's.py', "{'config': 'configs/digits.py', "
                     "'grid': {'optim.learning_rate': [0.1, 0.2], 'model.name': ['resnet20']}, "
                     "'random': {'optim.weight_decay': log_uniform(1e-5, 1e-3), "
                     "'optim.momentum': choice([0.8, 0.9])}, 'num_samples': 3, 'seeds': [0, 1]}")
  planned = sweep.trials(sweep.load_sweep(path))
  assert len(planned) == 2 * 3 * 2
  assert [t.seed for t in planned[:4]] == [0, 1, 0, 1]
  first = planned[0]
  assert list(first.overrides) == ['optim.learning_rate', 'model.name', 'optim.weight_decay',
                                   'optim.momentum']
  assert 1e-5 <= first.overrides['optim.weight_decay'] <= 1e-3
  decay = first.overrides['optim.weight_decay']
  assert decay == float(f'{decay:.3g}')  # rounded: the name shows the value that runs
  assert first.name == first.setting + ',seed=0'
  assert first.name.startswith('optim.learning_rate=0.1,model.name=resnet20,optim.weight_decay=')
  assert len({t.name for t in planned}) == len(planned)
  # the draws depend on random_seed only: the same sweep file gives the same trial names
  assert [t.name for t in sweep.trials(sweep.load_sweep(path))] == [t.name for t in planned]


def test_trial_names_are_readable_stable_and_safe():
  assert sweep.trial_name({'optim.learning_rate': 0.05, 'seed': 1}) == \
      'optim.learning_rate=0.05,seed=1'
  assert sweep.trial_name({}) == 'base'
  assert sweep.trial_name({'optim.milestones': (100, 150)}) == 'optim.milestones=100_150'
  odd = sweep.trial_name({'model.init_from': '/w/a b.th'})
  assert odd.startswith('model.init_from=_w_a_b.th-') and '/' not in odd and ' ' not in odd
  assert odd != sweep.trial_name({'model.init_from': '/w/a_b.th'})  # the hash tells them apart
  assert len(sweep.trial_name({'x': 'y' * 500})) < 140


def test_trial_arguments_put_fixed_overrides_first(tmp_path):
  path = write_sweep(tmp_path / 's.py', "{'config': 'configs/digits.py', 'fixed': "
                     "{'num_epochs': 2, 'optim.milestones': (1, 2)}, 'grid': {'model.name': "
                     "['resnet32']}, 'seeds': [3]}")
  loaded = sweep.load_sweep(path)
  (trial,) = sweep.trials(loaded)
  assert trial.args(loaded, '/d') == [
      '--config', os.path.join(ROOT, 'configs', 'digits.py'), '--workdir',
      '/d/model.name=resnet32,seed=3', '--config.num_epochs=2', '--config.optim.milestones=(1, 2)',
      '--config.model.name=resnet32', '--config.seed=3']


@pytest.mark.parametrize('body, message', [
    ("{'config': 'configs/digits.py', 'grid': {'optim.learnin_rate': [0.1]}}",
     'Did you mean config.optim.learning_rate'),
    ("{'config': 'configs/digits.py', 'grid': {'optim.learning_rate': ['fast']}}",
     'does not fit the config field'),
    ("{'config': 'configs/digits.py', 'grid': {'batch_size': [32, 0]}}",
     '--config.batch_size=0 must be at least 1'),
    ("{'config': 'configs/digits.py', 'grid': {'seed': [1, 2]}}", 'list seeds under "seeds"'),
    ("{'config': 'configs/digits.py', 'random': {'optim.momentum': (0.8, 0.9)}, 'num_samples': 2}",
     'use uniform(a, b)'),
    ("{'config': 'configs/digits.py', 'random': {'optim.momentum': uniform(0.8, 0.9)}}",
     'num_samples is 0'),
    ("{'config': 'configs/nope.py'}", 'configs/nope.py does not exist'),
    ("{'config': 'configs/digits.py', 'grids': {}}", "unknown keys ['grids']"),
    ("{'config': 'configs/digits.py', 'grid': {'optim.learning_rate': 0.1}}", 'give a list'),
    ('1 / 0', 'raised ZeroDivisionError'),
    ("['configs/digits.py']", 'returned list'),
      (("{'config': 'configs/digits.py', 'random': {'optim.momentum': uniform(0.9, 0.8)}, "
      "'num_samples': 1}"), 'must not exceed'),
])
def test_sweep_file_mistakes_fail_before_any_trial_runs(tmp_path, body, message):
  with pytest.raises(UserError, match=message.replace('(', r'\(').replace(')', r'\)')
                     .replace('[', r'\[').replace(']', r'\]')):
    sweep.load_sweep(write_sweep(tmp_path / 's.py', body))


def test_cli_reports_a_bad_sweep_file_in_one_paragraph(tmp_path):
  path = write_sweep(tmp_path / 's.py',
                     "{'config': 'configs/digits.py', 'grid': {'optim.lr': [1.]}}")
  proc = subprocess.run([sys.executable, '-m', 'resnet_flax.sweep', path, '--workdir',
                         str(tmp_path / 'out')], cwd=ROOT, capture_output=True, text=True,
                        timeout=120, check=False)
  assert proc.returncode == 2
  assert proc.stderr.startswith('error: Sweep file') and 'Traceback' not in proc.stderr
  assert 'optim has no key' in proc.stderr
  assert not os.path.exists(tmp_path / 'out')


# --- the local launcher, with a stand-in train.py ----------------------------------------------

@pytest.fixture
def fake_train(tmp_path, monkeypatch):
  script = tmp_path / 'fake_train.py'
  script.write_text(FAKE_TRAIN)
  monkeypatch.setattr(local, 'TRAIN_PY', str(script))
  monkeypatch.setattr(local, 'visible_gpus', list)
  return script


def fake_sweep(tmp_path, lrs=(0.1, 0.3, 0.5), seeds=(0, 1, 2)):
  return write_sweep(tmp_path / 'fake.py', f"{{'config': 'configs/default.py', 'grid': "
                     f"{{'optim.learning_rate': {list(lrs)}}}, 'seeds': {list(seeds)}}}")


def test_a_failing_trial_is_reported_and_the_others_run(tmp_path, fake_train, capsys):
  workdir = str(tmp_path / 'out')
  with pytest.raises(SystemExit) as exit_info:
    cli.main([fake_sweep(tmp_path), '--workdir', workdir, '--parallel', '2'])
  assert exit_info.value.code == 1
  out, err = capsys.readouterr()
  assert err.count('FAILED') == 3 and 'error: this learning rate diverges.' in err
  assert os.path.join(workdir, 'optim.learning_rate=0.3,seed=0', 'log.txt') in err
  assert out.count(' done ') == 6

  rows = list(csv.DictReader(read(os.path.join(workdir, 'results.csv')).splitlines()))
  assert [r['status'] for r in rows] == (['finished'] * 3 + ['failed (exit 3)'] * 3
                                         + ['finished'] * 3)
  markdown = read(os.path.join(workdir, 'results.md'))
  assert '| 0.1 | 3/3 | 11.00 ± 1.00 | 16.00 ± 1.00 |' in markdown
  assert '| 0.3 | 0/3 | – | – | – | – |' in markdown
  assert '- `optim.learning_rate=0.3,seed=2`: failed (exit 3)' in markdown
  assert read_bytes(os.path.join(workdir, 'results.png'))[:8] == PNG_SIGNATURE


def test_rerun_starts_only_the_unfinished_trials(tmp_path, fake_train, capsys):
  workdir = str(tmp_path / 'out')
  with pytest.raises(SystemExit):
    cli.main([fake_sweep(tmp_path), '--workdir', workdir])
  fake_train.write_text(FAKE_TRAIN.replace("== '0.3'", "== 'never'"))  # the bug is fixed
  capsys.readouterr()
  cli.main([fake_sweep(tmp_path), '--workdir', workdir])
  out = capsys.readouterr().out
  assert out.count('] skip ') == 6 and out.count('] start ') == 3
  rows = list(csv.DictReader(read(os.path.join(workdir, 'results.csv')).splitlines()))
  assert all(r['status'] == 'finished' for r in rows)
  log = read(os.path.join(workdir, 'optim.learning_rate=0.3,seed=0', 'log.txt'))
  assert log.count('=== ') == 4 and 'exit 3 after' in log
  assert 'exit 0 after' in log.rstrip().split('\n')[-1]


def test_parallel_trials_get_disjoint_gpus(tmp_path, fake_train, monkeypatch):
  monkeypatch.setattr(local, 'visible_gpus', lambda: ['0', '1', '2', '3'])
  workdir = str(tmp_path / 'out')
  cli.main([fake_sweep(tmp_path, lrs=(0.1,), seeds=(0, 1)), '--workdir', workdir,
            '--parallel', '2'])
  devices = sorted(json.loads(read(os.path.join(workdir, f'optim.learning_rate=0.1,seed={s}',
                                                'results.json')))['cuda'] for s in (0, 1))
  assert devices == ['0,1', '2,3']
  assert local.device_slots(3, ['0', '1', '2', '3'])[2] == {'CUDA_VISIBLE_DEVICES': '2'}
  assert local.device_slots(2, []) == [{}, {}]
  with pytest.raises(UserError, match='needs 3 GPUs'):
    local.device_slots(3, ['0', '1'])


def test_mean_and_std_over_seeds():
  assert results.mean_std([0.5]) == (0.5, None)
  mean, std = results.mean_std([0.1, 0.2, 0.6])
  assert mean == pytest.approx(0.3) and std == pytest.approx(statistics.stdev([0.1, 0.2, 0.6]))
  assert results.format_mean_std((0.91234, 0.0015), 100, 2) == '91.23 ± 0.15'
  assert results.format_mean_std((0.91234, None), 100, 2) == '91.23'
  assert results.format_mean_std(None, 100, 2) == '–'


def test_collect_needs_a_sweep_directory(tmp_path):
  with pytest.raises(UserError, match='has no trials.json'):
    results.collect(str(tmp_path))


# --- the SLURM script ---------------------------------------------------------------------------

def test_slurm_dry_run_writes_a_job_array_whose_tasks_run_their_trial(tmp_path, monkeypatch,
                                                                       capsys):
  argv_file = tmp_path / 'argv.txt'
  fake_python = tmp_path / 'python'
  fake_python.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGV_FILE"\necho "ran $5"\n')
  fake_python.chmod(0o755)
  monkeypatch.setattr(sys, 'executable', str(fake_python))
  path = write_sweep(tmp_path / 's.py', "{'config': 'configs/digits.py', 'fixed': "
                     "{'num_epochs': 1}, 'grid': {'optim.learning_rate': [0.05, 0.1]}, "
                     "'seeds': [0, 1], 'slurm': {'partition': 'gpu', 'time': '00:30:00'}}")
  workdir = str(tmp_path / 'my sweep')  # a space: the script quotes paths
  cli.main([path, '--workdir', workdir, '--launcher', 'slurm', '--dry-run', '--parallel', '2',
            '--time', '01:00:00', '--sbatch', 'mem=8G', '--sbatch', 'exclusive'])
  assert 'dry run: submit with  sbatch --array=0,1,2,3' in capsys.readouterr().out
  script = os.path.join(workdir, 'sweep.sbatch')
  assert subprocess.run(['bash', '-n', script], check=False).returncode == 0
  text = read(script)
  for line in ['#SBATCH --array=0-3%2', '#SBATCH --partition=gpu', '#SBATCH --time=01:00:00',
               '#SBATCH --mem=8G', '#SBATCH --exclusive', '#SBATCH --job-name=sweep-my_sweep',
               f"#SBATCH --output='{workdir}/slurm/%A_%a.out'"]:
    assert line + '\n' in text
  plan = json.loads(read(os.path.join(workdir, 'trials.json')))
  assert [t['name'] for t in plan['trials']] == [
      'optim.learning_rate=0.05,seed=0', 'optim.learning_rate=0.05,seed=1',
      'optim.learning_rate=0.1,seed=0', 'optim.learning_rate=0.1,seed=1']

  def task(index):
    env = dict(os.environ, SLURM_ARRAY_TASK_ID=str(index), ARGV_FILE=str(argv_file))
    return subprocess.run(['bash', script], env=env, capture_output=True, text=True, timeout=60,
                          check=False)

  proc = task(2)
  assert proc.returncode == 0, proc.stderr
  argv = argv_file.read_text().split('\n')[:-1]
  trial_dir = os.path.join(workdir, 'optim.learning_rate=0.1,seed=0')
  assert argv == [os.path.join(ROOT, 'train.py'), '--config',
                  os.path.join(ROOT, 'configs', 'digits.py'), '--workdir', trial_dir,
                  '--config.num_epochs=1', '--config.optim.learning_rate=0.1', '--config.seed=0']
  log = read(os.path.join(trial_dir, 'log.txt'))
  assert f'ran {trial_dir}' in log and log.rstrip().endswith('exit 0')

  with open(os.path.join(trial_dir, 'results.json'), 'w') as f:
    f.write('{}')
  argv_file.unlink()
  proc = task(2)
  assert proc.returncode == 0 and 'finished earlier' in proc.stdout and not argv_file.exists()
  assert task(4).returncode == 2
  not_in_an_array = subprocess.run(['bash', script], capture_output=True, check=False)
  assert not_in_an_array.returncode != 0


def test_submitting_without_sbatch_says_what_to_do(tmp_path, monkeypatch):
  monkeypatch.setattr(slurm.shutil, 'which', lambda name: None)
  path = write_sweep(tmp_path / 's.py', "{'config': 'configs/digits.py', 'seeds': [0]}")
  with pytest.raises(UserError, match='sbatch is not on PATH.*--dry-run'):
    cli.main([path, '--workdir', str(tmp_path / 'out'), '--launcher', 'slurm'])


# --- for real -----------------------------------------------------------------------------------

def run_sweep(*args, timeout=600):
  return subprocess.run([sys.executable, '-m', 'resnet_flax.sweep', *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=timeout, check=False)


def tiny_sweep(tmp_path, seeds=(0, 1)):
  """Two settings of the data's noise: unlike the learning rate, it changes no compiled step, so
  every trial after the first reuses the persistent compilation cache."""
  return write_sweep(tmp_path / 'tiny.py', repr({
      'config': 'configs/default.py', 'fixed': small_overrides(num_epochs=1),
      'grid': {'data.synthetic.noise': [0.3, 0.6]}, 'seeds': list(seeds)}))


def check_tables(workdir, trials):
  """results.csv has every trial finished; results.md's mean ± std agree with it."""
  rows = list(csv.DictReader(read(os.path.join(workdir, 'results.csv')).splitlines()))
  assert len(rows) == trials and all(r['status'] == 'finished' for r in rows), rows
  assert all(r['step'] == '3' and r['num_params'] == '75290' for r in rows)
  markdown = read(os.path.join(workdir, 'results.md'))
  for noise in ('0.3', '0.6'):
    group = [r for r in rows if r['data.synthetic.noise'] == noise]
    accuracies = [float(r['test_accuracy']) * 100 for r in group]
    losses = [float(r['test_loss']) for r in group]
    for r in group:
      assert float(r['best_test_accuracy']) == float(r['test_accuracy'])  # one evaluation
    cells = [f'{statistics.fmean(accuracies):.2f}', f'{statistics.fmean(losses):.4f}']
    if len(group) > 1:
      cells = [f'{cells[0]} ± {statistics.stdev(accuracies):.2f}',
               f'{cells[1]} ± {statistics.stdev(losses):.4f}']
    line = next(line for line in markdown.split('\n') if line.startswith(f'| {noise} |'))
    assert line.startswith(f'| {noise} | {len(group)}/{len(group)} | {cells[0]} | {cells[0]} | '
                           f'{cells[1]} |'), line
  image = os.path.join(workdir, 'results.png')
  assert read_bytes(image)[:8] == PNG_SIGNATURE
  assert matplotlib.image.imread(image).shape[2] in (3, 4)


@pytest.mark.slow  # many train.py start-ups; the stand-in train.py tests cover the logic fast
def test_four_trial_sweep_end_to_end_and_rerun_skips_them(tmp_path):
  """2 settings x 2 seeds of 1 epoch on tiny synthetic data, two trials at a time."""
  workdir = str(tmp_path / 'sweep')
  proc = run_sweep(tiny_sweep(tmp_path), '--workdir', workdir, '--parallel', '2')
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert proc.stdout.count(' done ') == 4
  check_tables(workdir, 4)
  names = [t['name'] for t in json.loads(read(os.path.join(workdir, 'trials.json')))['trials']]
  logs = {n: read(os.path.join(workdir, n, 'log.txt')) for n in names}
  assert all(log.count('start:') == 1 and 'final test accuracy' in log for log in logs.values())

  started = time.time()
  proc = run_sweep(tiny_sweep(tmp_path), '--workdir', workdir, '--parallel', '2')
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.count('finished earlier') == 4 and 'start' not in proc.stdout
  assert {n: read(os.path.join(workdir, n, 'log.txt')) for n in names} == logs
  assert time.time() - started < 30  # no train.py started
  check_tables(workdir, 4)


def slurm_cluster_problem():
  """Why a real SLURM cluster cannot be used here, or None when one answers with an idle node."""
  if not shutil.which('sbatch') or not shutil.which('sinfo'):
    return 'no SLURM client (sbatch, sinfo) on PATH; tests/slurm_single_node.sh starts one'
  try:
    proc = subprocess.run(['sinfo', '--noheader', '--format=%t'], capture_output=True, text=True,
                          timeout=20, check=False)
  except subprocess.TimeoutExpired:
    return 'sinfo did not answer within 20 s'
  if proc.returncode != 0:
    return f'sinfo failed: {proc.stderr.strip()}'
  if not {'idle', 'mix'} & set(proc.stdout.split()):
    return f'no idle SLURM node (sinfo: {proc.stdout.split()})'
  return None


@pytest.mark.slow
def test_sweep_through_a_real_slurm_cluster(tmp_path):
  problem = slurm_cluster_problem()
  if problem:
    pytest.skip(problem)
  workdir = str(tmp_path / 'sweep')
  path = tiny_sweep(tmp_path, seeds=(0,))
  proc = run_sweep(path, '--workdir', workdir, '--launcher', 'slurm', '--parallel', '2')
  assert proc.returncode == 0, proc.stderr
  assert 'submitted SLURM job' in proc.stdout
  job = read(os.path.join(workdir, 'slurm', 'jobs.txt')).split()[0]
  proc = run_sweep(path, '--workdir', workdir, '--launcher', 'slurm')
  assert proc.returncode == 2 and 'still queued or running' in proc.stderr  # no double submit
  deadline = time.time() + 400
  while subprocess.run(['squeue', '--noheader', '--jobs', job], capture_output=True, text=True,
                       check=False).stdout.strip():
    assert time.time() < deadline, 'the SLURM job did not finish within 400 s'
    time.sleep(2)
  proc = run_sweep(path, '--workdir', workdir, '--launcher', 'slurm')
  assert proc.returncode == 0, proc.stderr
  assert '2 trials finished earlier' in proc.stdout and 'submitted' not in proc.stdout
  check_tables(workdir, 2)
  for name in os.listdir(workdir):
    if name.startswith('data.'):
      assert 'start: slurm job' in read(os.path.join(workdir, name, 'log.txt'))
