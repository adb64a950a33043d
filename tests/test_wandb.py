"""Weights & Biases logging (reporting/wandb_writer.py), in W&B's offline mode: what a run logs is
read back from the offline run's own file, and a run without a project never imports wandb."""

import json
import os
import subprocess
import sys

import pytest

from resnet_flax.errors import UserError
from resnet_flax.reporting import writer
from resnet_flax.training.trainer import train_and_evaluate
from tests.conftest import small_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def offline(tmp_path, monkeypatch):
  """WANDB_MODE=offline with its files in tmp_path; returns the wandb directory."""
  pytest.importorskip('wandb')
  directory = tmp_path / 'wandb_dir'
  directory.mkdir()
  for key, value in {'WANDB_MODE': 'offline', 'WANDB_DIR': str(directory), 'WANDB_SILENT': 'true',
                     'WANDB_CONFIG_DIR': str(tmp_path / 'wandb_config')}.items():
    monkeypatch.setenv(key, value)
  return str(directory)


def wandb_config(**overrides):
  return small_config(**{'wandb.project': 'resnet-flax-test', 'tensorboard': False,
                         'write_plots': False, **overrides})


def jsonl(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def test_a_run_logs_its_steps_config_and_final_metrics(tmp_path, offline):
  from tests import wandb_offline
  workdir = str(tmp_path / 'run')
  final = train_and_evaluate(wandb_config(), workdir)
  (path,) = wandb_offline.run_files(offline)
  run = wandb_offline.read_run(path)
  with open(os.path.join(workdir, 'wandb_run_id')) as f:
    assert run['id'] == f.read().strip() and run['project'] == 'resnet-flax-test'
  records = jsonl(workdir)
  train = {r['step']: r['loss'] for r in records if 'loss' in r}
  test = {r['step']: r['test_accuracy'] for r in records if 'test_accuracy' in r}
  logged = {}
  for row in run['history']:
    logged.setdefault(row['_step'], {}).update(row)
  assert len(train) == 6 and {s: logged[s]['train/loss'] for s in train} == pytest.approx(train)
  assert {s: logged[s]['test/accuracy'] for s in test} == pytest.approx(test)
  assert run['config']['model.name'] == 'resnet8' and run['config']['batch_size'] == 32
  assert run['summary']['final/test_accuracy'] == pytest.approx(final['test_accuracy'])
  assert run['summary']['final/num_params'] == final['num_params']


@pytest.mark.slow
def test_a_resumed_run_continues_the_same_wandb_run(tmp_path, offline):
  from tests import wandb_offline
  workdir = str(tmp_path / 'run')
  train_and_evaluate(wandb_config(num_epochs=1, **{'optim.schedule': 'constant'}), workdir)
  train_and_evaluate(wandb_config(num_epochs=2, **{'optim.schedule': 'constant'}), workdir)
  first, second = map(wandb_offline.read_run, wandb_offline.run_files(offline))
  assert first['id'] == second['id']
  steps = [[row['_step'] for row in run['history']] for run in (first, second)]
  assert max(steps[0]) == 3 and min(steps[1]) == 4 and max(steps[1]) == 6, steps


def test_a_missing_wandb_package_is_one_user_error_naming_the_extra(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, 'wandb', None)  # `import wandb` now raises ImportError
  with pytest.raises(UserError, match=r'pip install -e "\.\[wandb\]"'):
    writer.writer_factories(wandb_config(), str(tmp_path))
  with pytest.raises(UserError, match='config.wandb.project is set'):
    train_and_evaluate(wandb_config(), str(tmp_path / 'run'))
  assert not os.path.exists(tmp_path / 'run' / 'metrics.jsonl')


def test_without_a_project_wandb_is_never_imported(tmp_path):
  """A whole short run in a fresh interpreter (this one may have imported wandb already)."""
  code = ('import sys, json; from tests.conftest import small_config; '
          'from resnet_flax.training.trainer import train_and_evaluate; '
          'import jax; jax.config.update("jax_num_cpu_devices", 1); '
          f'train_and_evaluate(small_config(num_epochs=1, write_plots=False), {str(tmp_path)!r}); '
          'print(json.dumps("wandb" in sys.modules))')
  out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, check=True).stdout
  assert out.strip().splitlines()[-1] == 'false'
  assert os.path.exists(tmp_path / 'metrics.jsonl')  # it did run, TensorBoard on
  assert not os.path.exists(tmp_path / 'wandb_run_id')
