"""benchmarks/gpu_check.sh (run by hand on a GPU machine) is valid bash, everything it calls
exists, and its bench refuses to write numbers off a GPU. No GPU is needed here."""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'benchmarks', 'gpu_check.sh')
sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))

import gpu_bench  # noqa: E402


def script() -> str:
  with open(SCRIPT) as f:
    return f.read()


def test_the_script_is_valid_bash():
  result = subprocess.run(['bash', '-n', SCRIPT], capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr


def test_every_test_and_python_file_it_names_exists():
  commands = '\n'.join(line for line in script().splitlines() if not line.startswith('#'))
  paths = set(re.findall(r'\b((?:tests|benchmarks)/[\w/]+\.py)', commands))
  assert {'benchmarks/gpu_bench.py', 'tests/test_train.py'} <= paths
  for path in paths:
    assert os.path.exists(os.path.join(ROOT, path)), path
  for path, name in re.findall(r'\b(tests/[\w/]+\.py)::(\w+)', commands):
    with open(os.path.join(ROOT, path)) as f:
      assert re.search(rf'^def {name}\(', f.read(), re.M), f'{path}::{name}'
  assert 'pip install -q -e ".[cuda12,test]" -c requirements.txt' in commands


def test_the_bench_refuses_a_cpu_and_writes_nothing(tmp_path):
  out = tmp_path / 'results-gpu.md'
  result = subprocess.run([sys.executable, os.path.join(ROOT, 'benchmarks', 'gpu_bench.py'),
                           '--out', str(out)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, 'JAX_PLATFORMS': 'cpu'}, check=False)
  assert result.returncode == 2 and 'not a GPU' in result.stderr, result.stderr
  assert not out.exists()


class FakeBench:
  """bench_jax's setup/train, at a fixed 1000 img/s of batch 100."""

  def setup(self, name, batch):
    del name, batch
    return {'params': 269_722, 'compile_s': 1.0}

  def train(self, steps):
    return {'seconds': steps * 100 / 1000}


@pytest.mark.parametrize('dtypes', [('float32', 'bfloat16'), ('float32',)])
def test_measure_and_render(dtypes):
  m = {d: gpu_bench.measure(FakeBench(), 'resnet20', 100, 3, 0.5) for d in dtypes}
  assert m['float32']['median'] == pytest.approx(1000) and len(m['float32']['img_per_s']) == 3
  report = gpu_bench.render({'models': {'resnet20': m}, 'date': 'D', 'command': 'C',
                             'device': 'H100', 'jax': '0', 'commit': 'c', 'batch': 100,
                             'repeats': 3})
  bf16 = '1,000' if 'bfloat16' in dtypes else '–'
  assert f'| resnet20 | 269,722 | 1,000 | {bf16} |' in report
