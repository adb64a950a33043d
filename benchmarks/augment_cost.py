"""What each augmentation policy costs a ResNet-20 train step, on both data paths.

  python benchmarks/augment_cost.py [--batch 128] [--repeats 3] [--steps 4]
      [--policies none,autoaugment_cifar10,randaugment,trivialaugment] [--markdown]

Each (data path, policy) pair is one jitted step: batches.train_batch (crop 4 + flip, then the
policy) composed with steps.train_step, from the uint8 split on the device ('on_device') or
from a host uint8 batch passed in each step ('host', the batch is copied in as the trainer's
is). The pairs are timed in interleaved blocks, each repeat in a rotated order, so load from
other processes hits all of them alike; the table gives medians and each policy's ratio to
'none' on the same path. Also the batch builder alone per policy (no model). The machine may
be shared: read the ratios, not the absolute times.
"""

import argparse
import functools
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # configs/

from resnet_flax.cpu import devices, host_memory

host_memory.keep_freed_memory()  # as train.py does
host_memory.one_step_at_a_time(devices.planned_count())

import jax
import jax.numpy as jnp

from benchmarks.input_pipeline import resnet20_step, step_times, synthetic_cifar
from resnet_flax.data import augment, batches, host_batches, policies
from resnet_flax.data.preprocess import Preprocess

PATHS = ('on_device', 'host')


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--batch', type=int, default=128)
  parser.add_argument('--num-train', type=int, default=10_000)
  parser.add_argument('--repeats', type=int, default=3, help='interleaved blocks per pair')
  parser.add_argument('--steps', type=int, default=4, help='train steps per block')
  parser.add_argument('--policies', default=','.join(policies.POLICIES))
  args = parser.parse_args()
  names = args.policies.split(',')
  ds = synthetic_cifar(args.num_train)
  steps_per_epoch = host_batches.steps_per_epoch(len(ds.train), args.batch)
  load = os.getloadavg()[0]

  state, train_step, rng, data = resnet20_step(ds)
  host = list(zip(range(8), host_batches.train_batches(ds, batch_size=args.batch, seed=2,
                                                       epoch=0)))

  runs, builders, states = {}, {}, {}
  for name in names:
    opts = augment.Augment(crop_padding=4, flip=True, policy=name)
    make = functools.partial(batches.train_batch, opts=opts, prep=Preprocess.from_dataset(ds),
                             seed=2, batch_size=args.batch, steps_per_epoch=steps_per_epoch,
                             num_classes=10)
    builders[name] = jax.jit(lambda source, step, make=make: make(source, step=step))
    for path in PATHS:
      key = (path, name)
      states[key] = jax.tree.map(jnp.copy, state)
      fn = jax.jit(lambda s, source, make=make: train_step(s, make(source, step=s.step), rng),
                   donate_argnums=0)

      def run(key=key, fn=fn, path=path):
        if path == 'on_device':
          source = data
        else:  # the host's uint8 batch, copied in with the call
          _, b = host[int(run.count) % len(host)]
          run.count += 1
          source = batches.HostBatch(jnp.asarray(b['image']), jnp.asarray(b['label']))
        states[key], metrics = fn(states[key], source)
        return metrics
      run.count = 0
      runs[key] = run
  del state

  for run in runs.values():  # compile and warm up
    step_times(run, 2)
  times = {key: [] for key in runs}
  order = list(runs)
  for repeat in range(args.repeats):
    shift = repeat % len(order)
    for key in order[shift:] + order[:shift]:
      times[key] += step_times(runs[key], args.steps)
  alone = {}
  for name in names:
    jax.block_until_ready(builders[name](data, jnp.int32(0)))
    alone[name] = statistics.median(step_times(lambda n=name: builders[n](data, jnp.int32(3)), 20))

  print(f'jax {jax.__version__}, {jax.default_backend()}, {os.cpu_count()} CPUs, ResNet-20, '
        f'batch {args.batch}, crop 4 + flip + policy; {args.repeats} interleaved blocks of '
        f'{args.steps} steps per pair; load average {load:.1f} at start, '
        f'{os.getloadavg()[0]:.1f} at end')
  print('| policy | on-device step (ms) | vs none | host step (ms) | vs none | '
        'batch builder alone (ms) |')
  print('|---|---|---|---|---|---|')
  med = {key: statistics.median(t) for key, t in times.items()}
  for name in names:
    cells = []
    for path in PATHS:
      base = med.get((path, 'none'))
      ratio = f'{med[(path, name)] / base:.2f}x' if base else '-'
      cells += [f'{1e3 * med[(path, name)]:.1f}', ratio]
    print(f'| {name} | {" | ".join(cells)} | {1e3 * alone[name]:.2f} |')


if __name__ == '__main__':
  main()
