"""Two variants of one model's train step, compiled in one process and timed in alternating rounds.

  .venv/bin/python benchmarks/ab.py --model resnet20 --a recompute_bn=False --b recompute_bn=True

Why: a change of a few percent drowns in the noise between processes on a shared machine
(heap layout, neighbours' load), which alternating rounds in one process cancel. Each variant
is the model built with `create_model` and the given fields (`field=value,...`, values as
Python literals): ResNet fields, plus `conv_backend` and `recompute_bn` (config.model's values;
True/False for 'on'/'off'), whose parts the CPU runtime chooses as for configs/default.py on
this machine, and an
SGD-momentum cross-entropy step at `--batch`; both steps run `--rounds` rounds of `--steps`
steps, alternating, and the first `--warmup` rounds are left out. `--devices N` splits the CPU
into N XLA devices and shards the batch over them, as training does (XLA's convs unless a
variant sets one). Prints each variant's compile time and step-time median and quartiles, and
b's step time as a fraction of a's.
"""

import argparse
import ast
import functools
import os
import statistics
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_fields(text: str) -> dict[str, Any]:
  """'a=1,b=True' -> {'a': 1, 'b': True}; values are Python literals, or strings."""
  fields = {}
  for item in filter(None, (part.strip() for part in text.split(','))):
    name, sep, value = item.partition('=')
    if not sep or not name.strip():
      raise SystemExit(f'ab.py: {item!r} is not field=value (e.g. recompute_bn=False)')
    try:
      fields[name.strip()] = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
      fields[name.strip()] = value.strip()
  return fields


def build(model_name: str, fields: dict[str, Any], batch: int,
          devices: int = 1) -> tuple[Any, list, float]:
  """The compiled step, its state and its compile time (trace, lower, XLA); with `devices` > 1
  the batch is sharded over that many devices (a jit over a mesh: BN statistics stay global)."""
  import jax
  import jax.numpy as jnp
  import optax

  import compile_time
  from configs import default
  from resnet_flax.cpu import runtime
  from resnet_flax.models import create_model

  cfg = default.get_config().model
  for key in ('conv_backend', 'recompute_bn', 'scan_blocks', 'dtype'):
    if key in fields:
      value = fields.pop(key) if key in ('conv_backend', 'recompute_bn') else fields[key]
      as_choice = key in ('recompute_bn', 'scan_blocks')  # config choices 'on'/'off'
      cfg[key] = {True: 'on', False: 'off'}.get(value, value) if as_choice else value
  parts = runtime.model_parts(cfg, sharded_jit=devices > 1)
  model = create_model(model_name, num_classes=10, **parts.fields(), **fields)
  variables = jax.jit(functools.partial(model.init, train=False))(
      jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  tx = optax.sgd(0.1, momentum=0.9)
  train_step = compile_time.sgd_train_step(model, tx)

  images = jax.random.normal(jax.random.key(1), (batch, 32, 32, 3))
  labels = jax.random.randint(jax.random.key(2), (batch,), 0, 10)
  state = [variables['params'], variables['batch_stats'], tx.init(variables['params'])]
  if devices > 1:
    mesh = jax.sharding.Mesh(jax.devices()[:devices], ('data',))
    sharded = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
    images, labels = jax.device_put((images, labels), sharded)
    state = jax.device_put(state, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
  start = time.perf_counter()
  step = jax.jit(train_step, donate_argnums=(0, 1, 2)).lower(*state, images, labels).compile()
  compile_s = time.perf_counter() - start
  return lambda *s: step(*s, images, labels), state, (compile_s, temp_gib(step))


def temp_gib(compiled: Any) -> float:
  """XLA's temp buffer for one step (activations kept for the backward pass, mostly), GiB."""
  analysis = compiled.memory_analysis()
  return getattr(analysis, 'temp_size_in_bytes', 0) / 2**30


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--model', default='resnet20')
  parser.add_argument('--a', default='', help='fields of variant a, e.g. recompute_bn=False')
  parser.add_argument('--b', default='', help='fields of variant b')
  parser.add_argument('--batch', type=int, default=128)
  parser.add_argument('--rounds', type=int, default=12)
  parser.add_argument('--steps', type=int, default=5, help='steps per variant per round')
  parser.add_argument('--warmup', type=int, default=2, help='rounds left out')
  parser.add_argument('--devices', type=int, default=1,
                      help='split the CPU into this many XLA devices and shard the batch over them')
  args = parser.parse_args()
  if (args.rounds - args.warmup) * args.steps < 2:
    parser.error('time at least 2 steps per variant: --rounds minus --warmup, times --steps')
  variants = {'a': parse_fields(args.a), 'b': parse_fields(args.b)}
  if args.devices > 1:  # before jax starts
    os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                               f' --xla_force_host_platform_device_count={args.devices}')
  sys.path[:0] = [ROOT]
  from resnet_flax.cpu import host_memory
  host_memory.keep_freed_memory()  # as train.py does, before JAX starts its threads
  host_memory.one_step_at_a_time(args.devices)

  built = {name: build(args.model, dict(fields), args.batch, args.devices)
           for name, fields in variants.items()}
  times: dict[str, list[float]] = {name: [] for name in built}
  for r in range(args.rounds):
    for name, (step, state, _) in built.items():
      for _ in range(args.steps):
        start = time.perf_counter()
        *state[:], loss = step(*state)
        loss.block_until_ready()
        if r >= args.warmup:
          times[name].append(time.perf_counter() - start)

  import jax
  placed = len(jax.tree.leaves(built['a'][1])[0].sharding.device_set)  # where the state lives
  print(f'{args.model}, batch {args.batch} on {placed} device(s): '
        f'{args.rounds - args.warmup} rounds x {args.steps} '
        'steps each, alternating\n\n| variant | fields | compile (s) | step median (ms) | '
        'step p25-p75 (ms) | img/s | XLA temp (GiB) |\n|---|---|---|---|---|---|---|')
  for name, (_, _, (compile_s, temp)) in built.items():
    fields = (args.a if name == 'a' else args.b) or '(defaults)'
    q = statistics.quantiles(times[name], n=4)
    median = statistics.median(times[name])
    print(f'| {name} | {fields} | {compile_s:.2f} | '
          f'{median * 1e3:.1f} | {q[0] * 1e3:.1f}-{q[2] * 1e3:.1f} | {args.batch / median:.1f} | '
          f'{temp:.3f} |')
  ratio = statistics.median(times['b']) / statistics.median(times['a'])
  print(f'\nb / a step time: {ratio:.3f}')


if __name__ == '__main__':
  main()
