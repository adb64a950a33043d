"""Side-by-side benchmark suite: resnet_flax vs PyTorch eager on this machine's CPU (issue 8).

  make bench [BENCH_ARGS='--models resnet20,resnet110 --repeats 3']
  .venv/bin/python benchmarks/suite.py [--models ...] [--repeats 5] [--quick] [--out results.md]

Why ratios: on a small machine shared with other work, absolute img/s move with whatever
else runs. Both sides therefore run in the same suite, as long-lived worker processes (ours in
the project venv, PyTorch in .venv-bench, once with libgomp's default spin-waiting and once with
OMP_WAIT_POLICY=PASSIVE) that are asked in turn, A B C then C B A, for one timed measurement
each; the medians over repeats and their ratio to the faster PyTorch are the figures of record.

Per model (batch 128, float32, 32x32x3, train-mode BN, SGD momentum + weight decay): train and
eval img/s of both sides; our init, trace, lower and XLA compile times; our model FLOP rate
against the f32 matmul peak. Then `train.py` itself: process start to first finished step and
peak RSS. Writes a Markdown report (--out) and the raw numbers beside it (.json).
"""

import argparse
import dataclasses
import datetime
import json
import os
import pickle
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import protocol

MODELS = ('resnet20', 'resnet56', 'resnet110', 'resnet20_bf16', 'resnet110_bf16', 'resnet18',
          'resnet20_scan', 'resnet110_scan')
# Asked for by name only (`--models resnet1202 --batch 32`): minutes a model at batch 128. Every
# suite run embeds benchmarks/depth.py, which measures them (batch 32 and 128) with their memory.
DEEP = ('resnet1202', 'resnet1202_remat', 'resnet1202_keep')
SCAN = protocol.SCAN  # ours with model.scan_blocks='on'; PyTorch runs the same net unrolled
# protocol.BF16: ours with model.dtype=bfloat16, PyTorch under bfloat16 autocast (not a goal)


def torch_name(name: str) -> str:
  return name.removesuffix(protocol.KEEP).removesuffix(protocol.REMAT).removesuffix(SCAN)
TORCH_PYTHON = os.path.join(ROOT, '.venv-bench', 'bin', 'python')
GPU_NOTE = 'not measured: no GPU in this run'
GiB = 2**30


@dataclasses.dataclass
class Plan:
  """How much to measure: the full suite, or --quick (a smoke run for tests)."""
  repeats: int
  warmup_steps: int  # untimed steps per side and kind in each warm-up round
  warmup_rounds: int  # train then eval, this many times per side before the repeats
  target_s: float  # one timed measurement runs about this long (at least one step)
  compile_repeats: int
  matmul_n: int
  matmul_reps: int  # per repeat
  start_runs: int  # train.py launches per dataset kind
  rss_steps: int  # the CIFAR-10-sized run goes on to this step before its peak RSS is read
  synthetic_50k: bool  # also launch train.py on the 50k synthetic set (slow to generate)


def make_plan(args: argparse.Namespace) -> Plan:
  if args.quick:
    return Plan(repeats=args.repeats or 1, warmup_steps=1, warmup_rounds=1, target_s=0,
                compile_repeats=1,
                matmul_n=1024, matmul_reps=2, start_runs=1, rss_steps=2, synthetic_50k=False)
  repeats = args.repeats or 5
  return Plan(repeats=repeats, warmup_steps=2, warmup_rounds=2, target_s=args.target_s,
              compile_repeats=min(repeats, 3), matmul_n=4096, matmul_reps=3,
              start_runs=min(repeats, 3), rss_steps=30, synthetic_50k=True)


def log(msg: str) -> None:
  print(f'[{time.strftime("%H:%M:%S")}] {msg}', file=sys.stderr, flush=True)


def median(xs: list[float]) -> float:
  return statistics.median(xs) if xs else float('nan')


# --- the machine ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
  """What the numbers were measured on (the report's header)."""
  cpu, flags = 'unknown', set()
  try:
    with open('/proc/cpuinfo') as f:
      lines = f.read().splitlines()
    cpu = next((line.split(':', 1)[1].strip() for line in lines if line.startswith('model name')),
               cpu)
    flags = set(next((line.split(':', 1)[1].split() for line in lines
                      if line.startswith('flags')), []))
    with open('/proc/meminfo') as f:
      mem_kib = int(next(line.split()[1] for line in f if line.startswith('MemTotal')))
  except (OSError, StopIteration, ValueError):
    mem_kib = 0
  try:
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain'], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.strip()
    commit += ' (with uncommitted changes)' if dirty else ''
  except (OSError, subprocess.CalledProcessError):
    commit = 'unknown'
  # The widest vector unit: oneDNN's and XLA's kernels differ most with it (machines of one
  # kind have come with and without AVX-512).
  vectors = next((name for flag, name in (('avx512f', 'AVX-512'), ('avx2', 'AVX2'))
                  if flag in flags), 'no AVX2')
  return {'cpu': cpu, 'vectors': vectors, 'cores': len(os.sched_getaffinity(0)),
          'cpu_count': os.cpu_count(), 'ram_gib': mem_kib / 2**20, 'kernel': platform.release(),
          'commit': commit, 'xla_flags': os.environ.get('XLA_FLAGS', ''),
          'load_start': os.getloadavg()}


# --- the two workers ------------------------------------------------------------------------------


def worker_env(threads: int) -> dict[str, str]:
  """CPU only (these are the CPU columns), quiet TensorFlow/absl, PyTorch threads = cores."""
  return {**os.environ, 'JAX_PLATFORMS': 'cpu', 'TF_CPP_MIN_LOG_LEVEL': '2',
          'BENCH_THREADS': str(threads), 'PYTHONUNBUFFERED': '1'}


TORCH_VARIANTS = {  # name -> extra environment; threads = usable cores in both
    'default': {},
    # libgomp's threads spin while they wait; on cores shared with other work that spinning
    # can slow PyTorch down badly, so it also runs with passive waiting, and the faster
    # of the two is the PyTorch of record (never a ratio flattered by the load).
    'passive': {'OMP_WAIT_POLICY': 'PASSIVE'},
}


def start_workers(label: str, torch_python: str | None, variants: list[str], logs: str,
                  threads: int) -> dict[str, protocol.Worker]:
  """'ours', then one 'pytorch/<variant>' worker per variant."""
  env = worker_env(threads)
  # The dtype decides our CPU device count, which is fixed before the worker hears the model.
  ours_env = {**env, 'BENCH_DTYPE': 'bfloat16' if label.endswith(protocol.BF16) else 'float32'}
  workers = {'ours': protocol.Worker('ours', [sys.executable, os.path.join(HERE, 'bench_jax.py')],
                                     os.path.join(logs, f'{label}-ours.log'), ours_env)}
  for variant in variants if torch_python else []:
    side = f'pytorch/{variant}'
    workers[side] = protocol.Worker(
        side, [torch_python, os.path.join(HERE, 'bench_torch.py')],
        os.path.join(logs, f'{label}-pytorch-{variant}.log'), {**env, **TORCH_VARIANTS[variant]})
  return workers


def close_all(workers: dict[str, protocol.Worker]) -> None:
  for w in workers.values():
    w.close()


def in_turn(workers: dict[str, protocol.Worker], r: int) -> list[tuple[str, protocol.Worker]]:
  """Every side, in A B C order on even repeats and C B A on odd ones, so drift in the load
  hits all alike."""
  pairs = list(workers.items())
  return pairs if r % 2 == 0 else pairs[::-1]


def bench_versions_and_matmul(plan: Plan, torch_python: str | None, variants: list[str],
                              logs: str, threads: int) -> dict[str, Any]:
  """Library versions and the f32 matmul peak of every side, interleaved."""
  workers = start_workers('matmul', torch_python, variants, logs, threads)
  try:
    out: dict[str, Any] = {'versions': {side: w.ask('info') for side, w in workers.items()},
                           'n': plan.matmul_n, 'gflops': {side: [] for side in workers}}
    for r in range(plan.repeats):
      for side, w in in_turn(workers, r):
        out['gflops'][side] += w.ask('matmul', n=plan.matmul_n, reps=plan.matmul_reps)['gflops']
    log(f'matmul {plan.matmul_n}^3 GFLOP/s: '
        + ', '.join(f'{side} {median(v):.0f}' for side, v in out['gflops'].items()))
    return out
  finally:
    close_all(workers)


def bench_model(name: str, plan: Plan, batch: int, torch_python: str | None, variants: list[str],
                logs: str, threads: int) -> dict[str, Any]:
  """Setup and compile once per side, warm up, then `repeats` interleaved timed measurements.

  After each repeat a separate process times the f32 matmul peak again, so the model's FLOP
  rate is read against the peak of its own minutes (a shared host's load moves both)."""
  workers = start_workers(name, torch_python, variants, logs, threads)
  peak_worker = start_workers(f'{name}-matmul', None, [], logs, threads)['ours']
  try:
    log(f'{name}: building, initialising and compiling')
    setup = {side: w.ask('setup', model=name if side == 'ours' else torch_name(name), batch=batch)
             for side, w in workers.items()}
    for side, info in setup.items():
      if info['params'] != setup['ours']['params']:
        raise RuntimeError(f'{name}: {side} has {info["params"]:,} parameters, ours '
                           f'{setup["ours"]["params"]:,}: not the same model')
    phases = [{k: setup['ours'][k] for k in ('trace_s', 'lower_s', 'compile_s')}]
    # The compile samples come before any timed step: a compile between two measurements
    # reshapes the heap, and the next train step then faults its temp buffer in again.
    phases += [workers['ours'].ask('compile') for _ in range(plan.compile_repeats - 1)]
    steps: dict[str, int] = {}
    # Rounds of train then eval, as the repeats alternate them: a process's heap settles only
    # after both steps' buffers have come and gone (the first train step after the first eval
    # step can fault its whole temp buffer in again). The last round sets the step counts.
    for _ in range(plan.warmup_rounds):
      for side, w in in_turn(workers, 0):
        for kind in ('train', 'eval'):
          seconds = w.ask(kind, steps=plan.warmup_steps)['seconds'] / plan.warmup_steps
          steps[f'{side}:{kind}'] = max(1, round(plan.target_s / seconds))
    rates = {kind: {side: [] for side in workers} for kind in ('train', 'eval')}
    peaks: list[float] = []
    for r in range(plan.repeats):
      for kind in ('train', 'eval'):
        for side, w in in_turn(workers, r):
          n = steps[f'{side}:{kind}']
          rates[kind][side].append(n * batch / w.ask(kind, steps=n)['seconds'])
      peaks += peak_worker.ask('matmul', n=plan.matmul_n, reps=plan.matmul_reps)['gflops']
      log(f'{name} repeat {r + 1}/{plan.repeats}: train img/s '
          + ', '.join(f'{side} {v[-1]:.1f}' for side, v in rates['train'].items()))
    return {'batch': batch, 'setup': setup, 'steps_per_measurement': steps,
            'train_ips': rates['train'], 'eval_ips': rates['eval'], 'compile_phases': phases,
            'matmul_gflops': peaks}
  finally:
    close_all({**workers, 'matmul': peak_worker})


# --- train.py itself -------------------------------------------------------------------------------


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
  env = {**worker_env(1), 'PYTHONUNBUFFERED': '1'}
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


def bench_train_py(plan: Plan, scratch: str) -> dict[str, list[dict[str, Any]]]:
  """Start-up and memory of real `train.py` runs, the kinds interleaved over the repeats. The
  first CIFAR-10-sized run goes on for `rss_steps` steps; the others stop after step 1."""
  cifar_dir = write_fake_cifar10(scratch)
  out: dict[str, list[dict[str, Any]]] = {'synthetic': [], 'cifar10_files': [],
                                          'cifar10_files_warm': []}
  if plan.synthetic_50k:
    out['synthetic_50k'] = []
  log('train.py on cifar10_files_warm, a first start that fills its compilation cache')
  run_train_py('cifar10_files_warm', 1, scratch, cifar_dir)
  for r in range(plan.start_runs):
    for kind in out:
      if kind == 'synthetic_50k' and r:
        continue  # one run: its data generation alone takes a minute
      stop = plan.rss_steps if (r == 0 and kind != 'synthetic') else 1
      log(f'train.py on {kind}, run {r + 1}, to step {stop}')
      out[kind].append(run_train_py(kind, stop, scratch, cifar_dir))
      log(f'  first step after {out[kind][-1]["first_step_s"]:.1f} s, '
          f'peak RSS {out[kind][-1]["rss_gib"]:.2f} GiB')
  return out


# Scripts whose own report the suite embeds: (script, section title, flags for --quick, whichever
# the script accepts).
EMBEDDED = (
    ('input_pipeline', 'Input pipeline',
     {'--repeats': '1', '--steps': '1', '--host-batches': '10', '--num-train': '2048'}),
    ('augment_cost', 'Augmentation policies: ResNet-20 train step and batch builder',
     {'--repeats': '1', '--steps': '1'}),
    ('depth', 'Depth: ResNet-20 to ResNet-1202, compile, train img/s and peak memory',
     {'--runs': 'resnet20:32,resnet1202:8', '--steps': '1',
      '--out': os.path.join(tempfile.gettempdir(), 'depth_quick.md')}),
)


def bench_script(name: str, quick_flags: dict[str, str], quick: bool) -> dict[str, Any] | None:
  """benchmarks/<name>.py's own report, where that script exists (its defaults; with --quick,
  whichever of `quick_flags` it accepts)."""
  script = os.path.join(HERE, f'{name}.py')
  if not os.path.exists(script):
    return None
  cmd = [sys.executable, script]
  if quick:
    usage = subprocess.run([*cmd, '--help'], cwd=ROOT, capture_output=True, text=True,
                           env=worker_env(1), timeout=300, check=False).stdout
    cmd += [x for flag, value in quick_flags.items() if flag in usage for x in (flag, value)]
  log(f'{name}: {" ".join(cmd[1:])}')
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=worker_env(1),
                        timeout=1800, check=False)
  return {'command': ' '.join(['python', os.path.relpath(script, ROOT), *cmd[2:]]),
          'returncode': proc.returncode, 'stdout': proc.stdout.strip(),
          'stderr_tail': proc.stderr.strip().splitlines()[-5:]}


# --- the report -------------------------------------------------------------------------------------


def summarize(results: dict[str, Any]) -> dict[str, Any]:
  """Medians, ratios and FLOP rates from the raw numbers."""
  peak = median(results['matmul']['gflops']['ours'])
  models = {}
  for name, m in results['models'].items():
    ours = m['setup']['ours']
    s = {'params': ours['params'], 'macs': ours['macs']}
    for kind in ('train', 'eval'):
      s[f'{kind}_ours'] = median(m[f'{kind}_ips']['ours'])
      theirs = {side.split('/')[1]: median(v) for side, v in m[f'{kind}_ips'].items()
                if side.startswith('pytorch/')}
      if theirs:
        best = max(theirs, key=theirs.get)
        s[f'{kind}_pytorch_variants'] = theirs
        s[f'{kind}_pytorch'], s[f'{kind}_pytorch_best'] = theirs[best], best
        s[f'{kind}_ratio'] = s[f'{kind}_ours'] / theirs[best]
    phases = m['compile_phases']
    for key in ('trace_s', 'lower_s', 'compile_s'):
      s[key] = median([p[key] for p in phases])
    s['compile_total_s'] = median([p['trace_s'] + p['lower_s'] + p['compile_s'] for p in phases])
    s['compile_samples'] = len(phases)
    s['init_s'], s['eval_compile_s'] = ours['init_s'], ours['eval_compile_s']
    flops_per_image = 6 * ours['macs']  # forward MACs x 2 FLOPs x 3 (forward + two backward)
    s['gflops_ours'] = s['train_ours'] * flops_per_image / 1e9
    s['xla_gflops_ours'] = s['train_ours'] * ours['xla_flops'] / m['batch'] / 1e9
    s['peak_gflops'] = median(m['matmul_gflops']) if m.get('matmul_gflops') else peak
    s['peak_fraction'] = s['gflops_ours'] / s['peak_gflops']
    if 'train_pytorch' in s:
      s['gflops_pytorch'] = s['train_pytorch'] * flops_per_image / 1e9
    models[name] = s
  start = {kind: {'first_step_s': median([r['first_step_s'] for r in runs]),
                  'summary_s': median([r['summary_s'] for r in runs if r.get('summary_s')]),
                  'rss_gib': max(r['rss_gib'] for r in runs), 'runs': len(runs),
                  'max_steps': max(r['steps'] for r in runs)}
           for kind, runs in results.get('train_py', {}).items() if runs}
  theirs = [median(v) for side, v in results['matmul']['gflops'].items() if side != 'ours']
  return {'peak_gflops': peak, 'peak_gflops_pytorch': max(theirs, default=float('nan')),
          'models': models, 'start': start}


@dataclasses.dataclass
class Goal:
  goal: str
  target: str
  measured: str
  met: bool | None  # None: not measured in this run


def goals(summary: dict[str, Any]) -> list[Goal]:
  """Issue 8's goals, each as measured (ratios on this machine, same run)."""
  m, start = summary['models'], summary['start']
  out = []
  for name in ('resnet20', 'resnet110'):
    ratio = m.get(name, {}).get('train_ratio')
    out.append(Goal(f'{name} train img/s vs PyTorch', '>= 1.0x',
                    f'{ratio:.2f}x' if ratio else 'not measured', ratio >= 1.0 if ratio else None))
  frac = m.get('resnet20', {}).get('peak_fraction')
  out.append(Goal('resnet20 step FLOP rate vs f32 matmul peak', '>= 60%',
                  f'{frac:.0%} ({m["resnet20"]["gflops_ours"]:.0f} of '
                  f'{m["resnet20"]["peak_gflops"]:.0f} '
                  'GFLOP/s)' if frac else 'not measured', frac >= 0.6 if frac else None))
  for suffix, how in (('', 'default, unrolled'), (SCAN, 'model.scan_blocks')):
    deep, shallow = m.get('resnet110' + suffix), m.get('resnet20')  # vs the default ResNet-20
    ratio = deep['compile_total_s'] / shallow['compile_total_s'] if deep and shallow else None
    out.append(Goal(f'resnet110 compile time vs resnet20 ({how})', '<= 1.5x',
                    f'{ratio:.2f}x ({deep["compile_total_s"]:.1f} s vs '
                    f'{shallow["compile_total_s"]:.1f} s)' if ratio else 'not measured',
                    ratio <= 1.5 if ratio else None))
  run = start.get('cifar10_files')
  warm = start.get('cifar10_files_warm')
  out.append(Goal('train.py start to first step, resnet20, CIFAR-10-sized', '<= 20 s',
                  (f'{run["first_step_s"]:.1f} s (cold cache)' if run else 'not measured')
                  + (f', {warm["first_step_s"]:.1f} s (warm)' if warm else ''),
                  run['first_step_s'] <= 20 if run else None))
  out.append(Goal('peak RSS, resnet20, CIFAR-10-sized training', '<= 3 GiB',
                  f'{run["rss_gib"]:.2f} GiB' if run else 'not measured',
                  run['rss_gib'] <= 3 if run else None))
  return out


def _f(x: float | None, digits: int = 1) -> str:
  return '–' if x is None or x != x else f'{x:,.{digits}f}'


def render(results: dict[str, Any]) -> str:
  """The Markdown report: machine, goals, per-model table, start-up and memory, notes."""
  s, mach, plan = summarize(results), results['machine'], results['plan']
  v = results['matmul']['versions']
  torch_info = next((info for side, info in v.items() if side.startswith('pytorch/')), {})
  torch_v = torch_info.get('torch', 'absent')
  variants = [side.split('/')[1] for side in v if side.startswith('pytorch/')]
  lines = [
      '# Benchmarks: resnet_flax vs PyTorch on this CPU', '',
      f'Generated {results["date"]} by `{results["command"]}` '
      f'({results.get("minutes", 0):.0f} min)'
      + (' (**--quick: a smoke run, not figures of record**)' if results['quick'] else '') + '.', '',
      '## Machine', '',
      f'- CPU: {mach["cpu"]} ({mach.get("vectors", "vector unit not recorded")}), '
      f'{mach["cores"]} cores usable '
      f'({mach["cpu_count"]} online), {mach["ram_gib"]:.1f} GiB RAM, Linux {mach["kernel"]}',
      f'- Python {v["ours"]["python"]}; jax {v["ours"]["jax"]}, jaxlib {v["ours"]["jaxlib"]}, '
      f'flax {v["ours"]["flax"]} ({v["ours"]["devices"]} {v["ours"]["backend"]} device(s)); '
      f'torch {torch_v} ({torch_info.get("threads", "–")} threads)',
      f'- Our convolutions: {v["ours"].get("convolutions", "not recorded")}',
      f'- XLA_FLAGS: `{mach["xla_flags"] or "(unset)"}`; commit {mach["commit"]}',
      f'- Load average (1 min) {mach["load_start"][0]:.1f} at start, {mach["load_end"][0]:.1f} at '
      f'end: other work shared the cores, so read the ratios, not the absolute rates.', '',
      '## Goals (issue 8)', '',
      '| goal | target | measured | status |', '|---|---|---|---|',
      *(f'| {g.goal} | {g.target} | {g.measured} | '
        f'{"not measured" if g.met is None else "met" if g.met else "**not met**"} |'
        for g in goals(s)), '',
      f'## Training and evaluation step (batch {results["batch"]}, float32, 32x32x3)', '',
      f'Images per second, median of {plan["repeats"]} interleaved repeats per side after '
      f'{plan.get("warmup_rounds", 1)} warm-up round(s) of {plan["warmup_steps"]} train and '
      f'{plan["warmup_steps"]} eval steps; ratio = ours / PyTorch. GFLOP/s = 6 x forward MACs '
      f'per image x img/s (model FLOPs); % of peak: of the jnp f32 matmul peak timed between that '
      f'model\'s repeats (below). PyTorch: '
      f'the faster of its runs ({", ".join(variants) or "none"}; see below).', '',
      '| model | params | train ours | train PyTorch | ratio | eval ours | eval PyTorch | ratio '
      '| ours GFLOP/s (% of peak) | PyTorch GFLOP/s | GPU train img/s |',
      '|---|---|---|---|---|---|---|---|---|---|---|']
  for name, m in s['models'].items():
    lines.append(
        f'| {name} | {m["params"]:,} | {_f(m["train_ours"])} | {_f(m.get("train_pytorch"))} '
        f'| {_f(m.get("train_ratio"), 2)} | {_f(m["eval_ours"])} | {_f(m.get("eval_pytorch"))} '
        f'| {_f(m.get("eval_ratio"), 2)} | {_f(m["gflops_ours"])} ({m["peak_fraction"]:.0%}) '
        f'| {_f(m.get("gflops_pytorch"))} | |')
  lines += ['', f'GPU column: {GPU_NOTE}.', '']
  if results.get('torch_missing'):
    lines += [f'PyTorch side skipped: {results["torch_missing"]}.', '']
  if variants:
    lines += ['PyTorch img/s by OpenMP wait policy (`default`: libgomp spins while waiting; '
              '`passive`: OMP_WAIT_POLICY=PASSIVE), threads = usable cores in both:', '',
              '| model | ' + ' | '.join(f'train {x} | eval {x}' for x in variants) + ' |',
              '|---|' + '---|---|' * len(variants)]
    for name, m in s['models'].items():
      cells = [f'{_f(m["train_pytorch_variants"][x])} | {_f(m["eval_pytorch_variants"][x])}'
               for x in variants]
      lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    lines.append('')
  lines += [
      '## Compile time (ours)', '',
      'Init: the jitted `model.init` + optimizer state (compile and run). Trace, lower and XLA '
      'compile of the train step through `parallel.DataParallel`, as train.py runs it; median of '
      'the samples (the first in a fresh process, the others recompiling from scratch). XLA '
      'GFLOP/s: the same step rate counted with XLA\'s cost analysis of the compiled step, which '
      'leaves out custom calls: with oneDNN\'s convolutions it counts only the rest of the step.',
      '',
      '| model | init (s) | trace (s) | lower (s) | XLA compile (s) | step total (s) | samples '
      '| eval step compile (s) | MACs/image | XLA GFLOP/s |',
      '|---|---|---|---|---|---|---|---|---|---|']
  for name, m in s['models'].items():
    lines.append(f'| {name} | {_f(m["init_s"])} | {_f(m["trace_s"], 2)} | {_f(m["lower_s"], 2)} '
                 f'| {_f(m["compile_s"])} | {_f(m["compile_total_s"])} | {m["compile_samples"]} '
                 f'| {_f(m["eval_compile_s"])} | {m["macs"] / 1e6:,.2f} M '
                 f'| {_f(m["xla_gflops_ours"])} |')
  n = results['matmul']['n']
  lines += ['', '## f32 matmul peak', '',
            f'{n}x{n} @ {n}x{n}, median of {len(results["matmul"]["gflops"]["ours"])}: jnp '
            f'{_f(s["peak_gflops"], 0)} GFLOP/s, PyTorch {_f(s["peak_gflops_pytorch"], 0)} GFLOP/s.',
            '']
  between = {name: r['matmul_gflops'] for name, r in results['models'].items()
             if r.get('matmul_gflops')}
  if between:
    lines += ['jnp, timed again after each repeat of each model (the peak its % of peak reads; '
              'medians, with the range): ' + '; '.join(
                  f'{name} {_f(median(v), 0)} ({_f(min(v), 0)}-{_f(max(v), 0)})'
                  for name, v in between.items()) + '.', '']
  if s['start']:
    lines += ['## train.py: process start to first finished step, peak RSS', '',
              'ResNet-20, configs/default.py, logging every step; times (medians) run from launching '
              '`python train.py` to its printed model summary (imports, data loaded, state '
              'initialised) and to its line for step 1 (the step compiled and run). Peak RSS: the largest over the '
              'runs (ru_maxrss from wait4); the first CIFAR-10-sized run trains on to the step '
              'shown, the others stop after step 1.', '',
              '| dataset | runs | start to model summary (s) | start to first step (s) '
              '| peak RSS (GiB) | steps |',
              '|---|---|---|---|---|---|']
    for kind, r in s['start'].items():
      lines.append(f'| {START_KINDS[kind][0]} | {r["runs"]} | {_f(r["summary_s"])} '
                   f'| {_f(r["first_step_s"])} | {r["rss_gib"]:.2f} | {r["max_steps"]} |')
    lines.append('')
  for name, title, _ in EMBEDDED:
    run = results.get(name)
    if run:
      lines += [f'## {title}', '', f'`{run["command"]}` (exit {run["returncode"]}):', '',
                '```', run['stdout'] or '(no output)', '```', '']
  lines += ['## How to read this', '',
            '- Both sides use the same batch every step (no input pipeline), the same '
            'optimizer (SGD momentum 0.9, weight decay 1e-4) and train-mode BatchNorm; PyTorch '
            'is eager, channels_last, one thread per usable core. Parameter counts are checked '
            'equal before timing.',
            '- Ours is `steps.train_step` under `parallel.DataParallel` with configs/default.py, '
            'i.e. the step and defaults a `train.py` user gets.',
            f'- `{protocol.BF16}` rows: ours with `model.dtype=bfloat16` (oneDNN\'s bf16 convs where '
            'the CPU has AMX or AVX512-BF16, else XLA\'s), PyTorch under `torch.autocast(\'cpu\', '
            'torch.bfloat16)`; their % of peak is of the f32 peak. No goal reads them.',
            f'- Raw numbers (every repeat): `{results["json"]}` beside this file.',
            '']
  return '\n'.join(lines)


# --- main --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--models', default=','.join(MODELS),
                      help=f'comma-separated, of {MODELS + DEEP}')
  parser.add_argument('--repeats', type=int, default=0,
                      help='timed repeats per side and model (default 5; --quick: 1)')
  parser.add_argument('--quick', action='store_true',
                      help='smoke run: 1 repeat, one step per measurement, small matmul')
  parser.add_argument('--out', default=os.path.join(HERE, 'results.md'),
                      help='Markdown report; the raw numbers go beside it as .json')
  parser.add_argument('--batch', type=int, default=128)
  parser.add_argument('--target-s', type=float, default=3.0,
                      help='seconds per timed measurement (whole steps, at least one)')
  parser.add_argument('--torch-python', default=TORCH_PYTHON,
                      help='python of the PyTorch bench venv (made by `make bench`); "" skips')
  parser.add_argument('--torch-variants', default='',
                      help=f'PyTorch runs, of {",".join(TORCH_VARIANTS)} (default: all; --quick: '
                      'default)')
  parser.add_argument('--skip-embedded', action='store_true',
                      help="leave out the embedded scripts' reports (EMBEDDED: depth takes ~15 min)")
  parser.add_argument('--skip-train-py', action='store_true',
                      help='leave out the train.py start-up and peak-RSS runs')
  args = parser.parse_args(argv)
  args.torch_variants = args.torch_variants or ('default' if args.quick else ','.join(TORCH_VARIANTS))
  for flag, given, known in (('--models', args.models, MODELS + DEEP),
                             ('--torch-variants', args.torch_variants, TORCH_VARIANTS)):
    unknown = set(given.split(',')) - set(known)
    if unknown:
      parser.error(f'{flag}: {", ".join(sorted(unknown))} not in {", ".join(known)}')
  return args


def main(argv: list[str] | None = None) -> None:
  args = parse_args(argv)
  plan = make_plan(args)
  threads = len(os.sched_getaffinity(0))
  torch_python, torch_missing = args.torch_python or None, ''
  if torch_python and not os.path.exists(torch_python):
    torch_missing = f'no bench venv at {os.path.relpath(torch_python, ROOT)} (`make bench` makes it)'
    torch_python = None
  elif not torch_python:
    torch_missing = '--torch-python ""'
  if torch_missing:
    log(f'PyTorch side skipped: {torch_missing}')
  command = ' '.join(['python', os.path.relpath(__file__, ROOT)]
                     + [shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)])
  started = time.perf_counter()
  out_json = os.path.splitext(args.out)[0] + '.json'
  results: dict[str, Any] = {
      'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
      'command': command, 'quick': args.quick, 'batch': args.batch,
      'json': os.path.basename(out_json),
      'plan': dataclasses.asdict(plan), 'machine': machine(), 'torch_missing': torch_missing,
      'models': {}}
  with tempfile.TemporaryDirectory(prefix='bench-') as scratch:
    logs = os.path.join(scratch, 'logs')
    os.makedirs(logs)
    variants = args.torch_variants.split(',')
    results['matmul'] = bench_versions_and_matmul(plan, torch_python, variants, logs, threads)
    for name in args.models.split(','):
      results['models'][name] = bench_model(name, plan, args.batch, torch_python, variants, logs,
                                            threads)
    if not args.skip_train_py:
      results['train_py'] = bench_train_py(plan, scratch)
    for name, _, quick_flags in EMBEDDED if not args.skip_embedded else ():
      results[name] = bench_script(name, quick_flags, args.quick)
  results['machine']['load_end'] = os.getloadavg()
  results['minutes'] = (time.perf_counter() - started) / 60
  report = render(results)
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, 'w') as f:
    f.write(report)
  with open(out_json, 'w') as f:
    json.dump(results, f, indent=1)
  print(report)
  log(f'wrote {args.out} and {out_json}')


if __name__ == '__main__':
  main()
