"""A fresh virtual environment with `pip install -e .[test] -c requirements.txt` trains: the
declared dependencies are complete and the console script finds the configs from anywhere."""

import json
import os
import subprocess
import sys

import pytest

from tests.test_packaging import pypi_reachable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_fresh_venv_installs_and_trains_digits(tmp_path):
  if not pypi_reachable():
    pytest.skip('PyPI is not reachable')
  venv = tmp_path / 'venv'
  subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True, timeout=300)
  pip = subprocess.run(
      [str(venv / 'bin' / 'pip'), 'install', '-q', '-e', f'{ROOT}[test]', '-c',
       os.path.join(ROOT, 'requirements.txt')], capture_output=True, text=True, timeout=1800)
  assert pip.returncode == 0, pip.stderr[-3000:]
  train = venv / 'bin' / 'resnet-flax-train'
  elsewhere = tmp_path / 'elsewhere'  # not the checkout: configs are found from anywhere
  elsewhere.mkdir()
  helped = subprocess.run([str(train), '--helpfull'], cwd=elsewhere, capture_output=True,
                          text=True, timeout=300)
  assert os.path.join(ROOT, 'configs', 'default.py') in helped.stdout
  env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}
  run = subprocess.run(
      [str(train), '--config', os.path.join(ROOT, 'configs', 'digits.py'), '--workdir', 'run',
       '--config.num_epochs=1', '--config.tensorboard=False', '--config.write_plots=False',
       '--config.compilation_cache_dir='],
      cwd=elsewhere, env=env, capture_output=True, text=True, timeout=1200)
  assert run.returncode == 0, run.stderr[-3000:]
  results = json.loads((elsewhere / 'run' / 'results.json').read_text())
  assert results['step'] > 0 and 0 <= results['test_accuracy'] <= 1
