"""Runs in a subprocess whose XLA_FLAGS give it several fake CPU devices; prints one JSON line.

  python tests/multidevice_worker.py four_devices WORKDIR
      modes, ghost_bn and eval_totals below in one process (one start-up)
  python tests/multidevice_worker.py modes WORKDIR
      every (parallel.mode, parallel.batch_norm) pair: per-step losses and the final test loss
  python tests/multidevice_worker.py ghost_bn
      one per-device-BN step vs a per-shard reference computed device by device
  python tests/multidevice_worker.py eval_totals
      summed eval_step outputs of a fresh ResNet-8 over the synthetic test set, at awkward batch sizes
  python tests/multidevice_worker.py process WORKDIR ADDRESS NUM_PROCESSES PROCESS_ID MODE ON_DEVICE [OVERRIDES]
      one process of a multi-process run (jax.distributed on 127.0.0.1); OVERRIDES: config JSON
"""

import functools
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from resnet_flax.training import build, evaluation, parallel, steps

from resnet_flax import data, train_and_evaluate
from resnet_flax.reporting.metrics_log import read_records
from tests.conftest import small_config

FAST = {'model.name': 'resnet8'}  # the fewest layers to compile: the numbers are the point
MODES = [('jit', 'global'), ('pmap', 'global'), ('jit', 'per_device'), ('pmap', 'per_device')]


def losses(workdir: str) -> list[float]:
  return [r['loss'] for r in read_records(os.path.join(workdir, 'metrics.jsonl')) if 'loss' in r]


def run_modes(workdir: str) -> dict:
  out = {}
  for mode, bn in MODES:
    run_dir = os.path.join(workdir, f'{mode}-{bn}')
    result = train_and_evaluate(
        small_config(**FAST, **{'parallel.mode': mode, 'parallel.batch_norm': bn}), run_dir)
    out[f'{mode}-{bn}'] = {'losses': losses(run_dir), 'test_loss': result['test_loss']}
  return out


def ghost_bn() -> dict:
  """Max differences between one per-device-BN step and its per-shard reference."""
  config = small_config(**FAST, **{'parallel.batch_norm': 'per_device', 'optim.schedule': 'constant'})
  model = build.create_model(config.model, 10)
  state, schedule, rng = build.create_state(config, model, (16, 16, 3), steps_per_epoch=3)
  data = np.random.default_rng(0)
  batch = {'image': data.normal(size=(32, 16, 16, 3)).astype(np.float32),
           'label': data.integers(0, 10, size=32).astype(np.int32)}
  mesh = parallel.data_mesh()
  runner = parallel.DataParallel(config.parallel, mesh,
                                 functools.partial(steps.train_step, schedule=schedule))
  state = jax.device_put(state, NamedSharding(mesh, P()))
  reference_start = jax.device_get(state)
  new, metrics = runner.step(runner.put_state(state), runner.put_batch(batch), runner.put_rng(rng))
  new = jax.device_get(runner.get_state(new))

  def shard_loss(params, images, labels):
    logits, updates = model.apply({'params': params, 'batch_stats': reference_start.batch_stats},
                                  images, train=True, mutable=['batch_stats'])
    return steps.cross_entropy(logits, labels).mean(), updates['batch_stats']

  per_shard = [jax.value_and_grad(shard_loss, has_aux=True)(
      reference_start.params, batch['image'][k:k + 8], batch['label'][k:k + 8])
      for k in range(0, 32, 8)]
  mean = lambda trees: jax.tree.map(lambda *x: jnp.mean(jnp.stack(x), 0), *trees)
  loss = float(np.mean([float(l) for (l, _), _ in per_shard]))
  reference = reference_start.apply_gradients(grads=mean([g for _, g in per_shard]),
                                              batch_stats=mean([s for (_, s), _ in per_shard]))
  reference = jax.device_get(reference)
  diff = lambda a, b: max(float(np.max(np.abs(x - y)))
                          for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  global_stats = jax.device_get(shard_loss(reference_start.params, batch['image'],
                                           batch['label'])[1])
  return {'loss': abs(parallel.fetch_metrics([metrics])[0]['loss'] - loss),
          'params': diff(new.params, reference.params),
          'batch_stats': diff(new.batch_stats, reference.batch_stats),
          'global_vs_ghost_stats': diff(global_stats, mean([s for (_, s), _ in per_shard]))}


def eval_totals() -> dict:
  """{batch size: totals} from the trainer's evaluation path: sharded padded batches, jit'd sums."""
  config = small_config(**FAST)
  dataset = data.load_dataset(config)
  model = build.create_model(config.model, dataset.num_classes)
  state, _, _ = build.create_state(config, model, (16, 16, 3), steps_per_epoch=3)
  sharded = NamedSharding(parallel.data_mesh(), P(parallel.AXIS))
  evaluator = evaluation.Evaluator(
      model, data.Preprocess.from_dataset(dataset), dataset.num_classes,
      to_device=functools.partial(jax.make_array_from_process_local_data, sharded),
      replicated=NamedSharding(parallel.data_mesh(), P()))
  out = {}
  for batch_size in (4, 12, 36, 44):  # 40 test images: none divides them evenly but 4
    totals = evaluator.totals(evaluation.eval_variables(state),
                              data.eval_batches(dataset.test, batch_size))
    out[batch_size] = {'loss': float(totals['loss']), 'correct_top5': int(totals['top_k']),
                       'correct': int(np.trace(totals['confusion'])),
                       'count': int(totals['confusion'].sum())}
  return out


def four_devices(workdir: str) -> dict:
  return {'modes': run_modes(workdir), 'ghost_bn': ghost_bn(), 'eval_totals': eval_totals()}


def process(workdir: str, address: str, num_processes: str, process_id: str, mode: str,
            on_device: str, overrides: str = '{}') -> dict:
  config = small_config(**FAST, **{'parallel.coordinator_address': address,
                                   'parallel.num_processes': int(num_processes),
                                   'parallel.process_id': int(process_id), 'parallel.mode': mode,
                                   'data.on_device': on_device, **json.loads(overrides)})
  result = train_and_evaluate(config, workdir)
  if result.get('preempted'):
    return {'process_index': jax.process_index(), 'preempted': True, 'step': result['step']}
  return {'process_index': jax.process_index(), 'devices': jax.device_count(),
          'local_devices': jax.local_device_count(), 'test_loss': result['test_loss']}


if __name__ == '__main__':
  what, *args = sys.argv[1:]
  result = {'four_devices': four_devices, 'modes': run_modes, 'ghost_bn': ghost_bn,
            'eval_totals': eval_totals, 'process': process}[what](*args)
  print('RESULT ' + json.dumps(result), flush=True)
