"""Depth: compile time, train img/s and peak memory of ours vs PyTorch, ResNet-20 to ResNet-1202.

  .venv/bin/python benchmarks/depth.py [--runs resnet20:128,resnet1202:32,resnet1202_keep:32]
      [--steps 3] [--out benchmarks/depth.md]

Each (model, batch, side) runs in its own process, one after another: its peak RSS is its own
(a ResNet-1202 step at batch 128 takes GBs on either side) and nothing runs beside it. Ours is
the suite's worker (bench_jax: configs/default.py's step, the layout model.scan_blocks='auto'
picks; suite suffixes `_scan` force scanned stages, `_keep` no recomputation, `_remat` each block
recomputed from its input: model.remat_blocks=off / on), PyTorch
bench_torch's eager step. Times are medians of `--steps` steps after one warm-up step; run the
file twice to see the noise of a shared host. Writes a Markdown table, its JSON, and a plot;
`make bench` (benchmarks/suite.py) runs it with its defaults and embeds the table.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import protocol

TORCH_PYTHON = os.path.join(os.path.dirname(HERE), '.venv-bench', 'bin', 'python')
DEFAULT_RUNS = ('resnet20:128,resnet56:128,resnet110:128,resnet110_scan:128,resnet1202:32,'
                'resnet1202_remat:32,resnet1202_keep:32,resnet1202:128,resnet1202_remat:128')


def child(side: str, name: str, batch: int, steps: int) -> None:
  """In the child: set up, one warm-up step, `steps` timed ones; prints one JSON line."""
  import statistics
  bench = __import__('bench_jax' if side == 'ours' else 'bench_torch')
  start = time.perf_counter()
  info = bench.setup(name if side == 'ours' else protocol.base_name(name), batch)
  setup_s = time.perf_counter() - start
  first = bench.train(1)['seconds']
  times = [bench.train(1)['seconds'] for _ in range(steps)]
  compile_s = sum(info.get(k, 0.0) for k in ('trace_s', 'lower_s', 'compile_s'))
  print(json.dumps({'setup_s': setup_s, 'init_s': info.get('init_s'), 'compile_s': compile_s,
                    'first_step_s': first, 'step_s': statistics.median(times),
                    'rss_gib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))


def measure(side: str, name: str, batch: int, steps: int, timeout: float,
            env: dict[str, str]) -> dict[str, Any]:
  python = sys.executable if side == 'ours' else TORCH_PYTHON
  cmd = [python, __file__, '--child', side, name, str(batch), str(steps)]
  print(f'{side} {name} batch {batch}', file=sys.stderr, flush=True)
  try:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2', **env})
  except subprocess.TimeoutExpired:
    return {'note': f'killed at the {timeout:g} s limit'}
  lines = [line for line in out.stdout.splitlines() if line.startswith('{')]
  if out.returncode or not lines:
    return {'note': f'exit {out.returncode}: {out.stderr.strip().splitlines()[-1:]}'}
  result = json.loads(lines[-1])
  print(f'  {result}', file=sys.stderr, flush=True)
  return result


def table(rows: list[dict[str, Any]]) -> str:
  lines = ['| model | batch | ours: compile (s) | first step (s) | img/s | peak RSS (GiB) '
           '| PyTorch: img/s | peak RSS (GiB) | img/s ratio | memory ratio | note |',
           '|---|---|---|---|---|---|---|---|---|---|---|']
  for r in rows:
    ours, torch = r['ours'], r['torch']
    ips = lambda x: r['batch'] / x['step_s'] if 'step_s' in x else None
    cells = [ours.get('compile_s'), ours.get('first_step_s'), ips(ours), ours.get('rss_gib'),
             ips(torch), torch.get('rss_gib')]
    ratio = lambda a, b: f'{a / b:.2f}x' if a and b else '-'
    lines.append(f'| {r["model"]} | {r["batch"]} | '
                 + ' | '.join('-' if c is None else f'{c:.2f}' for c in cells)
                 + f' | {ratio(ips(ours), ips(torch))} | {ratio(ours.get("rss_gib"), torch.get("rss_gib"))}'
                 + f' | {"; ".join(filter(None, (ours.get("note"), torch.get("note"))))} |')
  return '\n'.join(lines)


def plot(rows: list[dict[str, Any]], path: str) -> None:
  """Compile seconds, img/s ratio and memory ratio against depth, one line per batch."""
  from matplotlib.figure import Figure
  from matplotlib.ticker import ScalarFormatter
  fig = Figure(figsize=(12, 3.5))
  axes = fig.subplots(1, 3)
  for batch in sorted({r['batch'] for r in rows}):
    pts = sorted((int(''.join(c for c in protocol.base_name(r['model']) if c.isdigit())), r)
                 for r in rows if r['batch'] == batch and r['model'] == protocol.base_name(r['model']))
    for ax, value in zip(axes, (
        lambda r: r['ours'].get('compile_s'),
        lambda r: (r['torch']['step_s'] / r['ours']['step_s']
                   if 'step_s' in r['ours'] and 'step_s' in r['torch'] else None),
        lambda r: (r['ours']['rss_gib'] / r['torch']['rss_gib']
                   if 'rss_gib' in r['ours'] and 'rss_gib' in r['torch'] else None))):
      xy = [(d, value(r)) for d, r in pts if value(r) is not None]
      if xy:
        ax.plot(*zip(*xy), marker='o', label=f'batch {batch}')
  for ax, title in zip(axes, ('train-step compile (s), ours', 'train img/s, ours / PyTorch',
                              'peak RSS, ours / PyTorch')):
    ax.set_xscale('log')
    ax.xaxis.set_major_formatter(ScalarFormatter())  # plain labels: no mathtext fonts needed
    ax.set_xlabel('depth')
    ax.set_title(title)
    ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--runs', default=DEFAULT_RUNS, help='model:batch,... (suite names)')
  parser.add_argument('--steps', type=int, default=3)
  parser.add_argument('--timeout', type=float, default=900, help='seconds per process')
  parser.add_argument('--out', default=os.path.join(HERE, 'depth.md'))
  parser.add_argument('--torch-passive', action='store_true',
                      help="PyTorch with OMP_WAIT_POLICY=PASSIVE (the suite's second variant): "
                      'its spinning threads lose most on a loaded host')
  parser.add_argument('--child', nargs=4, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    side, name, batch, steps = args.child
    child(side, name, int(batch), int(steps))
    return
  load = os.getloadavg()[0]
  rows, env = [], {'torch': {'OMP_WAIT_POLICY': 'PASSIVE'} if args.torch_passive else {}, 'ours': {}}
  for run in args.runs.split(','):
    name, batch = run.split(':')
    rows.append({'model': name, 'batch': int(batch),
                 **{side: measure(side, name, int(batch), args.steps, args.timeout, env[side])
                    for side in ('ours', 'torch')}})
  text = (f'{time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, {os.cpu_count()} CPUs, load '
          f'{load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; float32; median of '
          f'{args.steps} steps after a warm-up step; PyTorch '
          f'{"OMP_WAIT_POLICY=PASSIVE" if args.torch_passive else "default OpenMP"}\n\n'
          f'`{" ".join(["python benchmarks/depth.py", *sys.argv[1:]])}`\n\n{table(rows)}\n')
  print(text)
  with open(args.out, 'w') as f:
    f.write(text)
  with open(os.path.splitext(args.out)[0] + '.json', 'w') as f:
    json.dump(rows, f, indent=1)
  plot(rows, os.path.splitext(args.out)[0] + '.png')


if __name__ == '__main__':
  main()
