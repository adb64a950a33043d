"""The GPU column: train img/s of resnet_flax's own step on a GPU, float32 and bfloat16.

  python benchmarks/gpu_bench.py [--models resnet20,resnet56,...] [--out benchmarks/results-gpu.md]

Run by benchmarks/gpu_check.sh on a machine with a GPU. The step is benchmarks/bench_jax.py's
(configs/default.py's train step through parallel.DataParallel, batch 128, 32x32x3, the same
batch every step, so no input pipeline), each model once in float32 and once with
model.dtype=bfloat16 (suite names ending in _bf16). Median of --repeats timed runs of about
--target-s each, after a warm-up. It refuses to run (exit 2, nothing written) unless JAX's default
backend is a GPU: the column is measured, never estimated. Writes the Markdown table to --out and
every repeat beside it (.json).
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODELS = ('resnet20', 'resnet56', 'resnet110', 'resnet18')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--models', default=','.join(MODELS), help=f'comma-separated, of {MODELS}')
  parser.add_argument('--dtypes', default='float32,bfloat16')
  parser.add_argument('--batch', type=int, default=128)
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--target-s', type=float, default=2.0, help='seconds per timed run')
  parser.add_argument('--out', default=os.path.join(HERE, 'results-gpu.md'))
  return parser.parse_args(argv)


def measure(bench: Any, name: str, batch: int, repeats: int, target_s: float) -> dict[str, Any]:
  """Set up and compile `name` (a bench_jax model name), then time whole runs of steps."""
  setup = bench.setup(name, batch)
  bench.train(3)  # warm-up: the first calls after compiling
  one = bench.train(5)['seconds'] / 5
  steps = max(5, int(target_s / max(one, 1e-6)))
  rates = [steps * batch / bench.train(steps)['seconds'] for _ in range(repeats)]
  return {'params': setup['params'], 'compile_s': setup['compile_s'], 'steps': steps,
          'img_per_s': rates, 'median': statistics.median(rates)}


def render(results: dict[str, Any]) -> str:
  rows = ['| model | params | float32 train img/s | bfloat16 train img/s |', '|---|---|---|---|']
  for model, by_dtype in results['models'].items():
    cells = [f'{by_dtype[d]["median"]:,.0f}' if d in by_dtype else '–'
             for d in ('float32', 'bfloat16')]
    params = next(iter(by_dtype.values()))['params']
    rows.append(f'| {model} | {params:,} | {cells[0]} | {cells[1]} |')
  return '\n'.join([
      '# GPU train img/s (the GPU column of benchmarks/results.md)', '',
      f'Generated {results["date"]} by `{results["command"]}` on {results["device"]}; jax '
      f'{results["jax"]}, commit {results["commit"]}.', '',
      f'Batch {results["batch"]}, 32x32x3, configs/default.py\'s train step (benchmarks/bench_jax.py),'
      f' median of {results["repeats"]} timed runs after a warm-up; bfloat16: model.dtype.', '',
      *rows, ''])


def main(argv: list[str] | None = None) -> int:
  args = parse_args(argv)
  sys.path[:0] = [ROOT, HERE]
  import jax  # pylint: disable=import-outside-toplevel
  if jax.default_backend() != 'gpu':
    print(f'error: JAX\'s default backend is {jax.default_backend()!r}, not a GPU: the GPU column '
          'is only measured on one. Nothing written.', file=sys.stderr)
    return 2
  import bench_jax  # pylint: disable=import-outside-toplevel
  commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True,
                          text=True, check=False).stdout.strip() or 'unknown'
  results: dict[str, Any] = {
      'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
      'command': ' '.join(['python benchmarks/gpu_bench.py', *(argv or sys.argv[1:])]),
      'device': str(jax.devices()[0].device_kind), 'jax': jax.__version__, 'commit': commit,
      'batch': args.batch, 'repeats': args.repeats, 'models': {}}
  for model in args.models.split(','):
    for dtype in args.dtypes.split(','):
      name = model + ('_bf16' if dtype == 'bfloat16' else '')
      started = time.perf_counter()
      m = measure(bench_jax, name, args.batch, args.repeats, args.target_s)
      results['models'].setdefault(model, {})[dtype] = m
      print(f'{name}: {m["median"]:,.0f} img/s ({time.perf_counter() - started:.0f} s)', flush=True)
  report = render(results)
  with open(args.out, 'w') as f:
    f.write(report)
  with open(os.path.splitext(args.out)[0] + '.json', 'w') as f:
    json.dump(results, f, indent=1)
  print(report)
  return 0


if __name__ == '__main__':
  sys.exit(main())
