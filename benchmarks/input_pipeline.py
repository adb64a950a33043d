"""Host input pipeline vs what a ResNet-20 step consumes; the cost of on-device data.

  python benchmarks/input_pipeline.py [--batch 128] [--repeats 3] [--steps 8] [--host-batches 100]

(a) The host batches alone (host_batches.train_batches over a synthetic CIFAR-sized set:
    50,000 32x32x3 uint8 images; they are augmented inside the step) in images/s, against the
    images/s of a jitted ResNet-20 train step (steps.train_step, SGD with momentum and weight
    decay) on a fixed device batch. Goal: the host is at least 4x faster than the step consumes.
(b) The ResNet-20 step with on-device data (batches.train_batch, `--augment`, composed into
    the same jitted function) against the same step on a fixed synthetic device batch. Goal:
    within 5%. The two are timed in alternating blocks, so load from other processes hits both.
Also: batches.train_batch alone. Every figure is a median over repeats (or steps).
"""

import argparse
import functools
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # configs/

from resnet_flax.cpu import devices, host_memory, runtime

host_memory.keep_freed_memory()  # before JAX's and tf.data's threads allocate, as train.py does
host_memory.one_step_at_a_time(devices.planned_count())

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import SingleDeviceSharding

from configs import default
from resnet_flax.training import build, steps
from resnet_flax.data import augment, batches, host_batches, on_device
from resnet_flax.data.preprocess import Preprocess
from resnet_flax.data.dataset import Dataset, Split
from resnet_flax.training.train_state import create_train_state

CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def synthetic_cifar(n: int) -> Dataset:
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
  labels = rng.integers(0, 10, n).astype(np.int32)
  return Dataset('synthetic_cifar', Split(images, labels), Split(images[:1000], labels[:1000]),
                 10, CIFAR10_MEAN, CIFAR10_STD, tuple(map(str, range(10))))


def host_images_per_sec(ds: Dataset, batch: int, n_batches: int, epoch: int) -> float:
  """One pass of `n_batches` (the epoch's order included, as the trainer pays it)."""
  start = time.perf_counter()
  host = host_batches.train_batches(ds, batch_size=batch, seed=0, epoch=epoch)
  for _ in range(n_batches):
    next(host)
  rate = n_batches * batch / (time.perf_counter() - start)
  host.close()
  return rate


def step_times(step: Callable[[], Any], n: int) -> list[float]:
  times = []
  for _ in range(n):
    start = time.perf_counter()
    jax.block_until_ready(step())
    times.append(time.perf_counter() - start)
  return times


def resnet20_step(ds: Dataset) -> tuple[Any, Callable[..., Any], jax.Array, batches.DeviceData]:
  """(state, train_step, rng, the data on the device): the model a train.py user gets (ResNet-20,
  its conv backend), SGD momentum 0.9 with weight decay 1e-4 at a constant lr 0.1."""
  config = default.get_config()
  model = build.create_model(config.model, num_classes=10,
                             parts=runtime.model_parts(config.model))
  tx = optax.chain(optax.add_decayed_weights(1e-4), optax.sgd(0.1, momentum=0.9))
  state = create_train_state(model, tx, jax.random.key(0), (32, 32, 3))
  train_step = functools.partial(steps.train_step, schedule=optax.constant_schedule(0.1))
  data = on_device.put_on_device(ds, SingleDeviceSharding(jax.devices()[0]))
  return state, train_step, jax.random.key(1), data


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--batch', type=int, default=128)
  parser.add_argument('--num-train', type=int, default=50_000)
  parser.add_argument('--augment', default='{"crop_padding": 4, "flip": true}',
                      help='augment.Augment fields as JSON (default: configs/default.py)')
  parser.add_argument('--repeats', type=int, default=3, help='host passes; blocks of (b)')
  parser.add_argument('--host-batches', type=int, default=100, help='batches per host pass')
  parser.add_argument('--steps', type=int, default=8, help='train steps per timed block')
  args = parser.parse_args()
  opts = augment.Augment(**json.loads(args.augment))
  ds = synthetic_cifar(args.num_train)
  steps_per_epoch = host_batches.steps_per_epoch(len(ds.train), args.batch)
  load = os.getloadavg()[0]

  host = [host_images_per_sec(ds, args.batch, args.host_batches, epoch)
          for epoch in range(args.repeats)]

  state, train_step, rng, data = resnet20_step(ds)
  make_batch = functools.partial(batches.train_batch, opts=opts, prep=Preprocess.from_dataset(ds),
                                 seed=2, batch_size=args.batch, steps_per_epoch=steps_per_epoch,
                                 num_classes=10)
  first = jax.jit(make_batch)(data, step=jnp.int32(0))
  fixed = {**first, 'image': jax.random.normal(jax.random.key(3), first['image'].shape)}

  synthetic_step = jax.jit(lambda state, batch: train_step(state, batch, rng), donate_argnums=0)
  device_step = jax.jit(lambda state, data: train_step(
      state, make_batch(data, step=state.step), rng), donate_argnums=0)
  batch_only = jax.jit(lambda data, step: make_batch(data, step=step))

  states = {'synthetic': jax.tree.map(jnp.copy, state), 'on_device': jax.tree.map(jnp.copy, state)}
  del state

  def run_synthetic():
    states['synthetic'], metrics = synthetic_step(states['synthetic'], fixed)
    return metrics

  def run_on_device():
    states['on_device'], metrics = device_step(states['on_device'], data)
    return metrics

  for run in (run_synthetic, run_on_device):  # compile and warm up
    step_times(run, 2)
  times: dict[str, list[float]] = {'synthetic': [], 'on_device': []}
  for repeat in range(args.repeats):  # alternating blocks, each kind first in turn
    order = (('synthetic', run_synthetic), ('on_device', run_on_device))
    for name, run in order[::-1] if repeat % 2 else order:
      times[name] += step_times(run, args.steps)
  device_steps = [jax.device_put(jnp.int32(s)) for s in range(200)]
  jax.block_until_ready(batch_only(data, device_steps[0]))
  data_only = statistics.median(
      t for step in device_steps for t in step_times(lambda s=step: batch_only(data, s), 1))

  host_rate = statistics.median(host)
  synthetic_s, device_s = (statistics.median(times[k]) for k in ('synthetic', 'on_device'))
  consume = args.batch / synthetic_s
  print(f'jax {jax.__version__}, {jax.default_backend()}, {os.cpu_count()} CPUs, batch '
        f'{args.batch}, {args.num_train:,} 32x32x3 images, augment {args.augment}; load average '
        f'{load:.1f} at start, {os.getloadavg()[0]:.1f} at end')
  print('| measure | images/s | ms per batch | note |')
  print('|---|---|---|---|')
  print(f'| (a) host batches alone | {host_rate:,.0f} | '
        f'{1e3 * args.batch / host_rate:.1f} | median of {args.repeats} passes of '
        f'{args.host_batches} batches: {", ".join(f"{r:,.0f}" for r in host)} |')
  print(f'| (a) ResNet-20 train step, fixed device batch | {consume:,.0f} | '
        f'{1e3 * synthetic_s:.1f} | median of {len(times["synthetic"])} steps |')
  print(f'| (b) ResNet-20 train step + on-device data | {args.batch / device_s:,.0f} | '
        f'{1e3 * device_s:.1f} | median of {len(times["on_device"])} steps, alternating blocks |')
  print(f'| batches.train_batch alone | {args.batch / data_only:,.0f} | {1e3 * data_only:.2f} '
        '| median of 200 calls |')
  print(f'\n(a) host pipeline / step consumption: {host_rate / consume:.1f}x (goal >= 4x)')
  print(f'(b) step time on-device data / synthetic: {device_s / synthetic_s:.3f} '
        f'({100 * (device_s / synthetic_s - 1):+.1f}%; goal within 5%)')


if __name__ == '__main__':
  main()
