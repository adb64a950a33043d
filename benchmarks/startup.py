"""train.py as a user starts it: process start to first finished step, and peak RSS.

The suite's start-up rows: ResNet-20 with configs/default.py on synthetic data and on a
CIFAR-10-sized set of random images in CIFAR-10's own pickle format (the real loading path),
with a cold and a warm compilation cache.
"""

import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

import protocol
import workers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GiB = 2**30


def write_fake_cifar10(root: str, num_train: int = 50_000, num_test: int = 10_000) -> str:
  """Random uint8 images in CIFAR-10's python-pickle layout: a CIFAR-10-sized run through the
  real loading path (data.dataset=cifar10_files), without the dataset."""
  folder = os.path.join(root, 'cifar-10-batches-py')
  os.makedirs(folder, exist_ok=True)
  rng = np.random.default_rng(0)
  per = num_train // 5
  for name, n in [(f'data_batch_{i}', per) for i in range(1, 6)] + [('test_batch', num_test)]:
    with open(os.path.join(folder, name), 'wb') as f:
      pickle.dump({b'data': rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                   b'labels': rng.integers(0, 10, n).tolist()}, f, protocol=2)
  with open(os.path.join(folder, 'batches.meta'), 'wb') as f:
    pickle.dump({b'label_names': [f'class{i}'.encode() for i in range(10)]}, f, protocol=2)
  return folder


START_KINDS = {  # what train.py is launched on: (description, extra flags)
    'synthetic': ('synthetic, default size (1,024 train images)',
                  ['--config.data.dataset=synthetic']),
    'cifar10_files': ('CIFAR-10-sized: 50,000 + 10,000 random 32x32x3 uint8 images as CIFAR-10 '
                      'pickles (data.dataset=cifar10_files)', ['--config.data.dataset=cifar10_files']),
    'cifar10_files_warm': ('the same, a later start: the compilation cache holds its compiled '
                           'steps (config.compilation_cache_dir, on by default)',
                           ['--config.data.dataset=cifar10_files']),
    'synthetic_50k': ('synthetic, 50,000 + 10,000 images (data.synthetic.num_train=50000)',
                      ['--config.data.dataset=synthetic', '--config.data.synthetic.num_train=50000',
                       '--config.data.synthetic.num_test=10000']),
}
STEP_LINE = re.compile(r'^step\s+(\d+)(?:/\d+)? \|')
SUMMARY_LINE = re.compile(r'^\s+params\s')  # the model summary: data loaded, state initialised


def run_train_py(kind: str, stop_step: int, scratch: str, cifar_dir: str,
                 timeout: float = 900) -> dict[str, Any]:
  """Launches ResNet-20 `train.py` (configs/default.py) and times process start to the printed
  line of step 1 (logged every step, so the line follows the step's result); kills it at
  `stop_step` and reads its peak RSS from wait4. A '_warm' kind shares one compilation cache
  over its runs; the others start with an empty one (cold)."""
  workdir = tempfile.mkdtemp(dir=scratch)
  cache = (os.path.join(scratch, 'warm-cache') if kind.endswith('_warm')
           else tempfile.mkdtemp(dir=scratch))
  cmd = [sys.executable, 'train.py', '--config', 'configs/default.py', '--workdir', workdir,
         '--config.log_every_steps=1', '--config.progress_bar=False',
         f'--config.data.cifar_dir={cifar_dir}', f'--config.compilation_cache_dir={cache}',
         *START_KINDS[kind][1]]
  env = {**workers.worker_env(1), 'PYTHONUNBUFFERED': '1'}
  env.pop('JAX_COMPILATION_CACHE_DIR', None)  # the config's cache, as a user's run has it
  start = time.perf_counter()
  proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, env=env)
  first, summary, step, tail = None, None, 0, []
  assert proc.stdout
  for line in proc.stdout:
    tail = (tail + [line.rstrip()])[-20:]
    if summary is None and SUMMARY_LINE.match(line):
      summary = time.perf_counter() - start
    m = STEP_LINE.match(line)
    if m:
      step = int(m.group(1))
      if first is None:
        first = time.perf_counter() - start
      if step >= stop_step:
        break
    if time.perf_counter() - start > timeout:
      break
  proc.kill()
  _, status, usage = os.wait4(proc.pid, 0)
  shutil.rmtree(workdir, ignore_errors=True)
  if first is None:
    raise RuntimeError(f'train.py ({kind}) printed no step line; exit status {status}:\n  '
                       + '\n  '.join(tail))
  return {'first_step_s': first, 'summary_s': summary, 'rss_gib': usage.ru_maxrss * 1024 / GiB,
          'steps': step}


def bench_train_py(scratch: str, runs: int, rss_steps: int,
                   with_50k: bool) -> dict[str, list[dict[str, Any]]]:
  """Start-up and memory of real `train.py` runs, the kinds interleaved over `runs` rounds
  (the 50k synthetic set, `with_50k`, once). The first CIFAR-10-sized run goes on for
  `rss_steps` steps; the others stop after step 1."""
  cifar_dir = write_fake_cifar10(scratch)
  out: dict[str, list[dict[str, Any]]] = {'synthetic': [], 'cifar10_files': [],
                                          'cifar10_files_warm': []}
  if with_50k:
    out['synthetic_50k'] = []
  protocol.log('train.py on cifar10_files_warm, a first start that fills its compilation cache')
  run_train_py('cifar10_files_warm', 1, scratch, cifar_dir)
  for r in range(runs):
    for kind in out:
      if kind == 'synthetic_50k' and r:
        continue  # one run: its data generation alone takes a minute
      stop = rss_steps if (r == 0 and kind != 'synthetic') else 1
      protocol.log(f'train.py on {kind}, run {r + 1}, to step {stop}')
      out[kind].append(run_train_py(kind, stop, scratch, cifar_dir))
      protocol.log(f'  first step after {out[kind][-1]["first_step_s"]:.1f} s, '
          f'peak RSS {out[kind][-1]["rss_gib"]:.2f} GiB')
  return out
