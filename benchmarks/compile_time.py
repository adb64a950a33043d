"""Compile time vs. depth, with and without `scan_blocks` (nn.scan over each stage's repeated blocks).

  python benchmarks/compile_time.py [--models resnet20,resnet110,resnet1202] [--scan off,on]

For each model and layout it measures the jitted init (trace + compile + run, one 32x32x3
image), the trace, lowering and XLA compile of a full SGD train step (value_and_grad of
cross-entropy, BN statistics mutable, optax.sgd update) at `--batch`, and the steady-state
step time (median after one warm-up step). Each measurement runs in a fresh process: no
cache is shared, peak memory is its own, and a step that cannot be interrupted (scanned
convs are very slow on XLA:CPU, jax-ml/jax#12868) is bounded by `--timeout`. Memory: a
ResNet-1202 step at batch 128 needs tens of GB, scanned or unrolled (benchmarks/NOTES.md).
"""

import argparse
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

COLUMNS = ('init_s', 'trace_s', 'lower_s', 'compile_s', 'first_step_s', 'step_s')


def _record(path: str, **values: Any) -> None:
  """Appends one JSON line (with the peak RSS so far), so a killed child leaves what it measured."""
  values['rss_gb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
  with open(path, 'a') as f:
    f.write(json.dumps(values) + '\n')
  print(f'  {values}', file=sys.stderr, flush=True)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
  start = time.perf_counter()
  out = fn()
  return out, time.perf_counter() - start


def sgd_train_step(model: Any, tx: Any) -> Callable[..., tuple]:
  """`(params, batch_stats, opt_state, images, labels) -> (params, batch_stats, opt_state, loss)`:
  cross-entropy, train-mode BN, `tx`'s update; the step this file and ab.py time."""
  import jax
  import optax

  def train_step(params, batch_stats, opt_state, images, labels):
    def loss_fn(params):
      logits, state = model.apply({'params': params, 'batch_stats': batch_stats}, images,
                                  train=True, mutable=['batch_stats'])
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
      return loss, state['batch_stats']

    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), batch_stats, opt_state, loss
  return train_step


def measure(name: str, scan: bool, batch: int, steps: int, max_step_s: float, out: str) -> None:
  """Runs in the child process; writes each number to `out` as soon as it has it."""
  import jax
  import jax.numpy as jnp
  import optax

  from resnet_flax.models import create_model, parts

  # The parts training builds on this backend with XLA's convs (models/parts.py).
  model = create_model(name, num_classes=10, scan_blocks=scan,
                       **parts.plain(scan, jax.default_backend() == 'cpu').fields())
  init = jax.jit(functools.partial(model.init, train=False))
  variables, init_s = _timed(lambda: jax.block_until_ready(
      init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))))
  _record(out, init_s=init_s)

  tx = optax.sgd(0.1, momentum=0.9)
  train_step = sgd_train_step(model, tx)
  images = jax.random.normal(jax.random.key(1), (batch, 32, 32, 3))
  labels = jax.random.randint(jax.random.key(2), (batch,), 0, 10)
  state = (variables['params'], variables['batch_stats'], tx.init(variables['params']))
  del variables
  traced, trace_s = _timed(lambda: jax.jit(train_step, donate_argnums=(0, 1, 2)).trace(
      *state, images, labels))
  lowered, lower_s = _timed(traced.lower)
  _record(out, trace_s=trace_s, lower_s=lower_s)
  compiled, compile_s = _timed(lowered.compile)
  _record(out, compile_s=compile_s)

  def step():
    nonlocal state
    *state, loss = compiled(*state, images, labels)
    loss.block_until_ready()

  _, first = _timed(step)
  _record(out, first_step_s=first)
  if first > max_step_s:
    _record(out, note=f'steady state skipped: warm-up step > {max_step_s:g} s')
    return
  times, budget = [], time.perf_counter() + 3 * max_step_s
  while len(times) < steps and (not times or time.perf_counter() < budget):
    times.append(_timed(step)[1])
  note = '' if len(times) == steps else f'{len(times)} steps (time cap)'
  _record(out, step_s=statistics.median(times), note=note)


def run_child(name: str, scan: bool, args: argparse.Namespace) -> dict[str, Any]:
  """Measures one (model, layout) in a fresh interpreter; merges what it wrote, even if killed."""
  with tempfile.NamedTemporaryFile('r', suffix='.jsonl') as out:
    cmd = [sys.executable, __file__, '--child', name, '--scan', 'on' if scan else 'off',
           '--out', out.name, '--batch', str(args.batch), '--steps', str(args.steps),
           '--max-step-s', str(args.max_step_s)]
    print(f'{name} scan={scan}', file=sys.stderr, flush=True)
    proc = subprocess.Popen(cmd, env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})
    try:
      rc = proc.wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
      proc.kill()
      proc.wait()
      rc = None
    result: dict[str, Any] = {}
    for line in out:
      result.update(json.loads(line))
  if rc is None:
    phase = next((c for c in COLUMNS if c not in result), 'step_s')
    ran = args.timeout - sum(result.get(c, 0) for c in COLUMNS)  # less imports and set-up
    result['note'] = f'killed at the {args.timeout:g} s limit; {phase[:-2]} had run about {ran:.0f} s'
  elif rc:
    result['note'] = f'child exited with {rc}' + (' (out of memory?)' if rc == -9 else '')
  return result


def table(rows: list[tuple[str, bool, dict[str, Any]]], batch: int) -> str:
  head = ('| model | scan | init (s) | trace (s) | lower (s) | XLA compile (s) | warm-up step (s) '
          '| step, median (s) | img/s | peak RSS (GB) | note |')
  lines = [head, '|' + '---|' * head.count(' | ') + '---|']
  for name, scan, r in rows:
    cells = [(f'{r[c]:.2f}' if r[c] >= 0.1 else f'{r[c]:.3f}') if c in r else '-' for c in COLUMNS]
    ips = f'{batch / r["step_s"]:.1f}' if 'step_s' in r else '-'
    rss = f'{r["rss_gb"]:.1f}' if 'rss_gb' in r else '-'
    lines.append(f'| {name} | {"on" if scan else "off"} | {" | ".join(cells)} | {ips} | {rss} '
                 f'| {r.get("note", "")} |')
  return '\n'.join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--models', default='resnet20,resnet110,resnet1202')
  parser.add_argument('--scan', default='off,on', help='layouts: off (unrolled), on (scan_blocks)')
  parser.add_argument('--batch', type=int, default=128)
  parser.add_argument('--steps', type=int, default=5, help='timed steps after the warm-up step')
  parser.add_argument('--max-step-s', type=float, default=60,
                      help='skip the steady state when the warm-up step takes longer')
  parser.add_argument('--timeout', type=float, default=1200, help='seconds per (model, layout)')
  parser.add_argument('--child', help=argparse.SUPPRESS)
  parser.add_argument('--out', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    measure(args.child, args.scan == 'on', args.batch, args.steps, args.max_step_s, args.out)
    return

  import jax
  load = os.getloadavg()[0]
  rows = [(name, scan, run_child(name, scan, args))
          for name in args.models.split(',') for scan in (s == 'on' for s in args.scan.split(','))]
  print(f'jax {jax.__version__}, {jax.default_backend()}, {os.cpu_count()} CPUs, batch {args.batch}, '
        f'float32; load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end')
  print(table(rows, args.batch))


if __name__ == '__main__':
  main()
