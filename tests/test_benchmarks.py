"""benchmarks/suite.py and report.py: the report and its goals, PyTorch's twins of our models, a --quick run.

The PyTorch side needs the bench venv (`make bench` makes .venv-bench); without it those tests
skip, saying so. The --quick run of our side compiles ResNet-20 and launches train.py twice,
over a minute on 2 cores: @slow.
"""

import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))

import protocol  # noqa: E402
import report  # noqa: E402
import suite  # noqa: E402
import workers  # noqa: E402

BENCH_PYTHON = suite.TORCH_PYTHON
needs_bench_venv = pytest.mark.skipif(
    not os.path.exists(BENCH_PYTHON),
    reason='PyTorch side not tested: no bench venv at .venv-bench (`make bench` makes it)')


def fake_results(ours_ips: float, compile_110: float, first_step: float, rss: float) -> dict:
  """Raw results as the suite records them, with round numbers."""
  def model(params, macs, train, eval_, compile_s):
    setup = {'params': params, 'macs': macs, 'init_s': 1.0, 'eval_compile_s': 0.5,
             'xla_flops': 128 * 6.0 * macs, 'trace_s': 0.5, 'lower_s': 0.5, 'compile_s': compile_s}
    return {'batch': 128, 'setup': {'ours': setup, 'pytorch/default': {'params': params}},
            'train_ips': {'ours': [train] * 3, 'pytorch/default': [100.0] * 3,
                          'pytorch/passive': [200.0, 200.0, 200.0]},
            'eval_ips': {'ours': [eval_] * 3, 'pytorch/default': [400.0] * 3,
                         'pytorch/passive': [300.0] * 3},
            'compile_phases': [{'trace_s': 0.5, 'lower_s': 0.5, 'compile_s': compile_s}]}
  run = {'first_step_s': first_step, 'summary_s': first_step / 2, 'rss_gib': rss, 'steps': 30}
  return {
      'date': '2026-01-01 00:00 UTC', 'command': 'python benchmarks/suite.py', 'quick': False,
      'batch': 128, 'json': 'results.json', 'torch_missing': '',
      'plan': {'repeats': 3, 'warmup_steps': 2},
      'machine': {'cpu': 'Test CPU', 'vectors': 'AVX2', 'cores': 2, 'cpu_count': 2, 'ram_gib': 8.0, 'kernel': 'x',
                  'commit': 'abc', 'xla_flags': '', 'load_start': (1.0, 1.0, 1.0),
                  'load_end': (1.0, 1.0, 1.0)},
      'matmul': {'n': 4096, 'versions': {
          'ours': {'jax': '0.0', 'jaxlib': '0.0', 'flax': '0.0', 'python': '3', 'devices': 1,
                   'backend': 'cpu', 'convolutions': 'onednn (oneDNN 3.2.0, auto)'},
          'pytorch/default': {'torch': '2.13.0', 'threads': 2},
          'pytorch/passive': {'torch': '2.13.0', 'threads': 2}},
          'gflops': {'ours': [100.0] * 3, 'pytorch/default': [150.0] * 3,
                     'pytorch/passive': [140.0] * 3}},
      'models': {'resnet20': model(269_722, 40_551_040, ours_ips, 900.0, 2.0),
                 'resnet110': model(1_727_962, 252_887_680, ours_ips, 900.0, compile_110),
                 'resnet110_scan': model(1_727_962, 252_887_680, ours_ips, 900.0, compile_110)},
      'train_py': {'synthetic': [run], 'cifar10_files': [run]},
  }


def goal_status(text: str) -> dict[str, str]:
  rows = re.findall(r'^\| (.+?) \| (?:>=|<=) .+? \| .+? \| (.+?) \|$', text, re.M)
  return dict(rows)


def test_report_compares_with_the_faster_pytorch_and_marks_goals():
  text = report.render(fake_results(ours_ips=250.0, compile_110=2.0, first_step=10.0, rss=2.0))
  # PyTorch of record: passive train (200 > 100), default eval (400 > 300)
  assert '| resnet20 | 269,722 | 250.0 | 200.0 | 1.25 | 900.0 | 400.0 | 2.25 |' in text
  # 250 img/s x 6 x 40.55 M MACs = 60.8 GFLOP/s of a 100 GFLOP/s peak
  assert '60.8 (61%)' in text
  assert 'GPU column: not measured: no GPU in this run.' in text
  assert 'CPU: Test CPU (AVX2), 2 cores' in text  # kernels differ most with the vector unit
  assert 'Our convolutions: onednn (oneDNN 3.2.0, auto)' in text
  status = goal_status(text)
  assert list(status.values()) == ['met'] * 7, status


def test_report_marks_unmet_goals():
  text = report.render(fake_results(ours_ips=150.0, compile_110=9.0, first_step=25.0, rss=3.5))
  assert list(goal_status(text).values()) == ['**not met**'] * 7


def test_flop_rate_reads_the_peak_timed_beside_its_model():
  """A model's % of peak is of the matmul peak timed between its own repeats, where recorded."""
  results = fake_results(ours_ips=250.0, compile_110=2.0, first_step=10.0, rss=2.0)
  results['models']['resnet20']['matmul_gflops'] = [40.0, 50.0, 200.0]  # median 50
  text = report.render(results)
  assert '| resnet20 | 269,722 |' in text and '60.8 (122%)' in text
  assert ('| resnet20 step FLOP rate vs f32 matmul peak | >= 60% | 122% (61 of 50 GFLOP/s) |'
          in text)
  assert 'after each repeat of each model' in text and 'resnet20 50 (40-200)' in text
  # resnet110 recorded none: its % reads the peak timed before the models (100 GFLOP/s)
  assert '379.3 (379%)' in text  # 250 img/s x 6 x 252.9 M MACs of 100 GFLOP/s


def test_report_without_torch_or_train_py():
  results = fake_results(250.0, 2.0, 10.0, 2.0)
  for m in results['models'].values():
    for kind in ('train_ips', 'eval_ips'):
      m[kind] = {'ours': m[kind]['ours']}
  results['matmul']['versions'] = {'ours': results['matmul']['versions']['ours']}
  results['matmul']['gflops'] = {'ours': [100.0]}
  results['torch_missing'] = 'no bench venv at .venv-bench (`make bench` makes it)'
  del results['train_py']
  text = report.render(results)
  assert 'PyTorch side skipped: no bench venv' in text
  statuses = list(goal_status(text).values())
  assert statuses == ['not measured', 'not measured', 'met', 'met', 'met', 'not measured',
                      'not measured']


@needs_bench_venv
def test_pytorch_models_have_our_parameter_counts(tmp_path):
  from resnet_flax.models import create_model, summarize
  worker = protocol.Worker('pytorch', [BENCH_PYTHON, os.path.join(ROOT, 'benchmarks',
                                                                   'bench_torch.py')],
                           str(tmp_path / 'torch.log'), workers.worker_env(1), timeout=300)
  try:
    for name in dict.fromkeys(map(suite.torch_name, suite.MODELS)):  # ResNet-18 last
      theirs = worker.ask('setup', model=name, batch=8)['params']
      ours = create_model(protocol.base_name(name), num_classes=10)
      assert theirs == summarize(ours, (32, 32, 3)).params, name
    assert worker.ask('train', steps=1)['seconds'] > 0  # the last one: ResNet-18
    assert worker.ask('eval', steps=1)['seconds'] > 0
  finally:
    worker.close()


@pytest.mark.slow
def test_quick_suite_writes_every_row(tmp_path):
  """Our side only (PyTorch has its own test above): rows present, numbers positive."""
  out = tmp_path / 'results.md'
  subprocess.run([sys.executable, os.path.join(ROOT, 'benchmarks', 'suite.py'), '--quick',
                  '--models', 'resnet20', '--torch-python', '', '--out', str(out)],
                 check=True, cwd=ROOT, timeout=900)
  text = out.read_text()
  for row in ('| resnet20 train img/s vs PyTorch | >= 1.0x | not measured |',
              '| resnet20 step FLOP rate vs f32 matmul peak | >= 60% |',
              '| train.py start to first step, resnet20, CIFAR-10-sized | <= 20 s |',
              '| peak RSS, resnet20, CIFAR-10-sized training | <= 3 GiB |',
              '## f32 matmul peak', 'GPU column: not measured: no GPU in this run.'):
    assert row in text
  s = report.summarize(json.loads((tmp_path / 'results.json').read_text()))
  m = s['models']['resnet20']
  assert m['params'] == 269_722
  for key in ('train_ours', 'eval_ours', 'init_s', 'trace_s', 'lower_s', 'compile_s',
              'gflops_ours', 'xla_gflops_ours'):
    assert m[key] > 0, key
  assert s['peak_gflops'] > 0 and m['peak_gflops'] > 0  # before the models, and beside this one
  assert 'after each repeat of each model' in text
  for kind in ('synthetic', 'cifar10_files'):
    assert s['start'][kind]['first_step_s'] > 0 and s['start'][kind]['rss_gib'] > 0
  assert re.search(r'^\| resnet20 \| 269,722 \| [\d,.]+ \| – \|', text, re.M)


@pytest.mark.slow
def test_levers_script_measures_a_variant_in_its_own_process():
  """benchmarks/levers.py: the chosen variant runs with its own device count; rates positive."""
  proc = subprocess.run([sys.executable, os.path.join(ROOT, 'benchmarks', 'levers.py'),
                         '--models', 'resnet20', '--variants', 'XLA convs, 2 CPU devices',
                         '--steps', '1', '--repeats', '1'],
                        cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-2000:]
  row = re.search(r'^\| XLA convs, 2 CPU devices \| 2 \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$',
                  proc.stdout, re.M)
  assert row and all(float(x) > 0 for x in row.groups()), proc.stdout
  assert 'init compile, backend -O0 (s)' in proc.stdout


@pytest.mark.slow
def test_ab_times_two_variants_of_a_model_in_one_process():
  """benchmarks/ab.py: both variants compile and are timed (here over 2 CPU devices); a malformed
  field is refused."""
  import ab  # noqa: E402
  assert ab.parse_fields('recompute_bn=False, dtype=bfloat16,scan_blocks=True') == {
      'recompute_bn': False, 'dtype': 'bfloat16', 'scan_blocks': True}
  with pytest.raises(SystemExit, match='not field=value'):
    ab.parse_fields('recompute_bn')
  proc = subprocess.run([sys.executable, os.path.join(ROOT, 'benchmarks', 'ab.py'),
                         '--model', 'resnet8', '--batch', '8', '--rounds', '3', '--steps', '1',
                         '--warmup', '1', '--devices', '2',
                         '--a', 'recompute_bn=False,conv_backend=xla',
                         '--b', 'recompute_bn=True,conv_backend=xla'],
                        cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert 'resnet8, batch 8 on 2 device(s)' in proc.stdout, proc.stdout
  for name, fields in (('a', 'recompute_bn=False,conv_backend=xla'),
                       ('b', 'recompute_bn=True,conv_backend=xla')):
    row = re.search(rf'^\| {name} \| {fields} \| [\d.]+ \| [\d.]+ \| [\d.]+-[\d.]+ \| [\d.]+ '
                    r'\| ([\d.]+) \|$', proc.stdout, re.M)
    assert row and float(row.group(1)) > 0, proc.stdout  # XLA's temp buffer, GiB
  assert re.search(r'^b / a step time: [\d.]+$', proc.stdout, re.M), proc.stdout
