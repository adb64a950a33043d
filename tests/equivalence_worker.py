"""Many training steps on 4 fake CPU devices against one device; prints one JSON line.

  XLA_FLAGS=--xla_force_host_platform_device_count=4 python tests/equivalence_worker.py PRECISION STEPS

PRECISION is float64 (jax_enable_x64, every parameter, statistic and logit in float64) or
float32. The same ResNet-8 starts from the same state and takes STEPS SGD steps on the same
random batches: under jit and pmap with global BN, against plain jit on one device; under jit
and pmap with per-device BN, against a per-shard reference (each device's 8 images as their own
BN batch, gradients and statistics averaged) computed on one device. Reported per mode: the
relative loss differences at every step and the largest relative parameter difference at the end.
"""

import functools
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

PRECISION, STEPS = sys.argv[1], int(sys.argv[2])
jax.config.update('jax_enable_x64', PRECISION == 'float64')  # before any array exists

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P  # noqa: E402

from resnet_flax.training import build, parallel, steps  # noqa: E402
from tests.conftest import small_config  # noqa: E402

DTYPE = np.dtype(PRECISION)
BATCH, SHARDS = 32, 4
MODES = [('jit', 'global'), ('pmap', 'global'), ('jit', 'per_device'), ('pmap', 'per_device')]


def config_for(mode: str, bn: str):
  return small_config(**{'model.conv_backend': 'xla', 'model.recompute_bn': 'off',
                         'model.dtype': PRECISION, 'optim.schedule': 'constant',
                         'parallel.mode': mode, 'parallel.batch_norm': bn})


def initial_state(config):
  """The ResNet-8's state from config.seed, every float in DTYPE (params, BN statistics,
  momentum), and its model and dropout key."""
  model = build.create_model(config.model, 10, bn_axis_name=parallel.bn_axis_name(config.parallel))
  state, schedule, rng = build.create_state(config, model, (16, 16, 3), steps_per_epoch=3)
  cast = lambda x: x.astype(DTYPE) if jnp.issubdtype(x.dtype, jnp.floating) else x
  return jax.tree.map(cast, state), schedule, rng


def batches():
  data = np.random.default_rng(0)
  return [{'image': data.normal(size=(BATCH, 16, 16, 3)).astype(DTYPE),
           'label': data.integers(0, 10, size=BATCH).astype(np.int32)} for _ in range(STEPS)]


def run(mode: str, bn: str, mesh: Mesh) -> tuple[list[float], object]:
  """Losses and final params of the trainer's DataParallel step over `mesh`."""
  config = config_for(mode, bn)
  state, schedule, rng = initial_state(config)
  runner = parallel.DataParallel(config.parallel, mesh,
                                 functools.partial(steps.train_step, schedule=schedule))
  state = runner.put_state(jax.device_put(state, NamedSharding(mesh, P())))
  key, metrics = runner.put_rng(rng), []
  for batch in batches():
    state, m = runner.step(state, runner.put_batch(batch), key)
    metrics.append(m)
  losses = [m['loss'] for m in parallel.fetch_metrics(metrics)]
  return losses, jax.device_get(runner.get_state(state).params)


def per_shard_reference() -> tuple[list[float], object]:
  """Per-device BN computed on one device: each shard's loss, gradient and BN statistics from
  its own images, averaged as the devices average them."""
  state, _, _ = initial_state(config_for('jit', 'global'))

  def shard_loss(params, batch_stats, images, labels):
    logits, updates = state.apply_fn({'params': params, 'batch_stats': batch_stats}, images,
                                     train=True, mutable=['batch_stats'])
    return steps.cross_entropy(logits, labels).mean(), updates['batch_stats']

  @jax.jit
  def step(state, batch):
    size = BATCH // SHARDS
    per_shard = [jax.value_and_grad(shard_loss, has_aux=True)(
        state.params, state.batch_stats, batch['image'][k:k + size], batch['label'][k:k + size])
        for k in range(0, BATCH, size)]
    mean = lambda trees: jax.tree.map(lambda *x: jnp.mean(jnp.stack(x), 0), *trees)
    loss = jnp.mean(jnp.stack([l for (l, _), _ in per_shard]))
    return state.apply_gradients(grads=mean([g for _, g in per_shard]),
                                 batch_stats=mean([s for (_, s), _ in per_shard])), loss

  losses = []
  for batch in batches():
    state, loss = step(state, batch)
    losses.append(float(loss))
  return losses, jax.device_get(state.params)


def compare(losses, params, ref_losses, ref_params) -> dict:
  rel = [abs(a - b) / abs(b) for a, b in zip(losses, ref_losses)]
  param_rel = max(float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
                  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref_params)))
  return {'loss_rel': rel, 'params_rel': param_rel}


def main() -> dict:
  assert jax.device_count() == SHARDS, 'run with --xla_force_host_platform_device_count=4'
  one_device = Mesh(np.array(jax.devices()[:1]), (parallel.AXIS,))
  references = {'global': run('jit', 'global', one_device), 'per_device': per_shard_reference()}
  out = {'precision': PRECISION, 'steps': STEPS,
         'loss_dtype': str(jnp.asarray(references['global'][0]).dtype),
         'reference_losses': {bn: ref[0] for bn, ref in references.items()}}
  for mode, bn in MODES:
    out[f'{mode}-{bn}'] = compare(*run(mode, bn, parallel.data_mesh()), *references[bn])
  return out


if __name__ == '__main__':
  print('RESULT ' + json.dumps(main()), flush=True)
