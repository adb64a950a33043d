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
peak RSS (startup.py). Writes a Markdown report (--out, report.py) and the raw numbers beside it
(.json); workers.py starts the two sides.
"""

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import protocol
import report
import startup
import workers
from protocol import log
from report import median

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


# --- the models, side by side -------------------------------------------------------------


def bench_versions_and_matmul(plan: Plan, torch_python: str | None, variants: list[str],
                              logs: str, threads: int) -> dict[str, Any]:
  """Library versions and the f32 matmul peak of every side, interleaved."""
  sides = workers.start('matmul', torch_python, variants, logs, threads)
  try:
    out: dict[str, Any] = {'versions': {side: w.ask('info') for side, w in sides.items()},
                           'n': plan.matmul_n, 'gflops': {side: [] for side in sides}}
    for r in range(plan.repeats):
      for side, w in workers.in_turn(sides, r):
        out['gflops'][side] += w.ask('matmul', n=plan.matmul_n, reps=plan.matmul_reps)['gflops']
    log(f'matmul {plan.matmul_n}^3 GFLOP/s: '
        + ', '.join(f'{side} {median(v):.0f}' for side, v in out['gflops'].items()))
    return out
  finally:
    workers.close_all(sides)


def bench_model(name: str, plan: Plan, batch: int, torch_python: str | None, variants: list[str],
                logs: str, threads: int) -> dict[str, Any]:
  """Setup and compile once per side, warm up, then `repeats` interleaved timed measurements.

  After each repeat a separate process times the f32 matmul peak again, so the model's FLOP
  rate is read against the peak of its own minutes (a shared host's load moves both)."""
  sides = workers.start(name, torch_python, variants, logs, threads)
  peak_worker = workers.start(f'{name}-matmul', None, [], logs, threads)['ours']
  try:
    log(f'{name}: building, initialising and compiling')
    setup = {side: w.ask('setup', model=name if side == 'ours' else torch_name(name), batch=batch)
             for side, w in sides.items()}
    for side, info in setup.items():
      if info['params'] != setup['ours']['params']:
        raise RuntimeError(f'{name}: {side} has {info["params"]:,} parameters, ours '
                           f'{setup["ours"]["params"]:,}: not the same model')
    phases = [{k: setup['ours'][k] for k in ('trace_s', 'lower_s', 'compile_s')}]
    # The compile samples come before any timed step: a compile between two measurements
    # reshapes the heap, and the next train step then faults its temp buffer in again.
    phases += [sides['ours'].ask('compile') for _ in range(plan.compile_repeats - 1)]
    steps: dict[str, int] = {}
    # Rounds of train then eval, as the repeats alternate them: a process's heap settles only
    # after both steps' buffers have come and gone (the first train step after the first eval
    # step can fault its whole temp buffer in again). The last round sets the step counts.
    for _ in range(plan.warmup_rounds):
      for side, w in workers.in_turn(sides, 0):
        for kind in ('train', 'eval'):
          seconds = w.ask(kind, steps=plan.warmup_steps)['seconds'] / plan.warmup_steps
          steps[f'{side}:{kind}'] = max(1, round(plan.target_s / seconds))
    rates = {kind: {side: [] for side in sides} for kind in ('train', 'eval')}
    peaks: list[float] = []
    for r in range(plan.repeats):
      for kind in ('train', 'eval'):
        for side, w in workers.in_turn(sides, r):
          n = steps[f'{side}:{kind}']
          rates[kind][side].append(n * batch / w.ask(kind, steps=n)['seconds'])
      peaks += peak_worker.ask('matmul', n=plan.matmul_n, reps=plan.matmul_reps)['gflops']
      log(f'{name} repeat {r + 1}/{plan.repeats}: train img/s '
          + ', '.join(f'{side} {v[-1]:.1f}' for side, v in rates['train'].items()))
    return {'batch': batch, 'setup': setup, 'steps_per_measurement': steps,
            'train_ips': rates['train'], 'eval_ips': rates['eval'], 'compile_phases': phases,
            'matmul_gflops': peaks}
  finally:
    workers.close_all({**sides, 'matmul': peak_worker})


def bench_script(name: str, quick_flags: dict[str, str], quick: bool) -> dict[str, Any] | None:
  """benchmarks/<name>.py's own report, where that script exists (its defaults; with --quick,
  whichever of `quick_flags` it accepts)."""
  script = os.path.join(HERE, f'{name}.py')
  if not os.path.exists(script):
    return None
  cmd = [sys.executable, script]
  if quick:
    usage = subprocess.run([*cmd, '--help'], cwd=ROOT, capture_output=True, text=True,
                           env=workers.worker_env(1), timeout=300, check=False).stdout
    cmd += [x for flag, value in quick_flags.items() if flag in usage for x in (flag, value)]
  log(f'{name}: {" ".join(cmd[1:])}')
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=workers.worker_env(1),
                        timeout=1800, check=False)
  return {'command': ' '.join(['python', os.path.relpath(script, ROOT), *cmd[2:]]),
          'returncode': proc.returncode, 'stdout': proc.stdout.strip(),
          'stderr_tail': proc.stderr.strip().splitlines()[-5:]}


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
                      help=f'PyTorch runs, of {",".join(workers.TORCH_VARIANTS)} (default: all; '
                      '--quick: default)')
  parser.add_argument('--skip-embedded', action='store_true',
                      help="leave out the embedded scripts' reports (EMBEDDED: depth takes ~15 min)")
  parser.add_argument('--skip-train-py', action='store_true',
                      help='leave out the train.py start-up and peak-RSS runs')
  args = parser.parse_args(argv)
  args.torch_variants = args.torch_variants or ('default' if args.quick
                                                else ','.join(workers.TORCH_VARIANTS))
  for flag, given, known in (('--models', args.models, MODELS + DEEP),
                             ('--torch-variants', args.torch_variants, workers.TORCH_VARIANTS)):
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
      results['train_py'] = startup.bench_train_py(scratch, plan.start_runs, plan.rss_steps,
                                                   plan.synthetic_50k)
    for name, _, quick_flags in report.EMBEDDED if not args.skip_embedded else ():
      results[name] = bench_script(name, quick_flags, args.quick)
  results['machine']['load_end'] = os.getloadavg()
  results['minutes'] = (time.perf_counter() - started) / 60
  text = report.render(results)
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, 'w') as f:
    f.write(text)
  with open(out_json, 'w') as f:
    json.dump(results, f, indent=1)
  print(text)
  log(f'wrote {args.out} and {out_json}')


if __name__ == '__main__':
  main()
