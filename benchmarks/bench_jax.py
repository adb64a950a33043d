"""Our side of benchmarks/suite.py: a worker (project venv) that times resnet_flax's own step.

It builds the state, step and runner exactly as trainer.py does (configs/default.py with the
model name changed: SGD momentum 0.9, weight decay 1e-4, float32, train-mode BN), so the
numbers are what a user's `train.py` run gets, defaults included. Commands: see HANDLERS.
"""

import functools
import os
import statistics
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.dirname(os.path.abspath(__file__))]

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

import protocol
from configs import default
from resnet_flax.training import build, evaluation, parallel, steps
from resnet_flax import models
from resnet_flax.data.preprocess import Preprocess
from resnet_flax.cpu import backend, devices, host_memory, runtime

NUM_CLASSES, IMAGE_SHAPE, STEPS_PER_EPOCH = 10, (32, 32, 3), 50_000 // 128
# The CPU split into devices as train.py splits it for the default config in the dtype the suite
# says (BENCH_DTYPE), before anything starts JAX; XLA_FLAGS with a device count overrides it.
HOST_MEMORY = host_memory.keep_freed_memory()  # as train_and_evaluate does


def _startup_config() -> Any:
  config = default.get_config()
  config.model.dtype = os.environ.get('BENCH_DTYPE', config.model.dtype)
  return config


CPU_DEVICES = devices.configure(_startup_config())
host_memory.one_step_at_a_time(devices.planned_count())  # as train.py does
_S: dict[str, Any] = {}  # the worker's state between commands


def _timed(fn) -> tuple[Any, float]:
  start = time.perf_counter()
  out = fn()
  return out, time.perf_counter() - start


def _runner() -> parallel.DataParallel:
  """A fresh DataParallel (a new jit object: nothing cached) around steps.train_step."""
  config = _S['config']
  return parallel.DataParallel(config.parallel, _S['mesh'], functools.partial(
      steps.train_step, schedule=_S['schedule'], label_smoothing=config.optim.label_smoothing,
      sam=parallel.sam_mode(config), ema_decay=config.optim.ema_decay))


def _compile(runner: parallel.DataParallel) -> tuple[Any, dict[str, float]]:
  """Trace, lower and XLA-compile the runner's step ahead of time, each phase timed.

  Reads the runner's jitted function (a private attribute): there is no public handle, and
  timing the first call instead would mix compile time with a step.
  """
  args = (runner.put_state(_S['state']), _S['batch'], _S['key'])
  traced, trace_s = _timed(lambda: runner._step.trace(*args))  # pylint: disable=protected-access
  lowered, lower_s = _timed(traced.lower)
  compiled, compile_s = _timed(lowered.compile)
  return compiled, {'trace_s': trace_s, 'lower_s': lower_s, 'compile_s': compile_s}


def setup(model: str, batch: int) -> dict[str, Any]:
  """Builds, initialises and compiles; returns sizes, init/compile times and XLA's FLOP count."""
  config = default.get_config()
  config.model.name = protocol.base_name(model)
  config.model.scan_blocks = 'on' if protocol.SCAN in model else 'auto'
  config.model.remat_blocks = ('off' if model.endswith(protocol.KEEP) else
                               'on' if model.endswith(protocol.REMAT) else 'auto')
  if model.endswith(protocol.BF16):
    config.model.dtype = 'bfloat16'
  config.batch_size = batch
  parts = runtime.model_parts(config.model, sharded_jit=parallel.sharded_jit(config.parallel))
  net = build.create_model(config.model, NUM_CLASSES,
                           bn_axis_name=parallel.bn_axis_name(config.parallel), parts=parts)
  (state, schedule, rng), init_s = _timed(lambda: jax.block_until_ready(
      build.create_state(config, net, IMAGE_SHAPE, STEPS_PER_EPOCH)))
  mesh = parallel.data_mesh()
  _S.update(config=config, mesh=mesh, schedule=schedule,
            state=jax.device_put(state, NamedSharding(mesh, P())))
  runner = _runner()
  rs = np.random.RandomState(0)
  host = {'image': rs.standard_normal((batch, *IMAGE_SHAPE)).astype(np.float32),
          'label': rs.randint(0, NUM_CLASSES, batch).astype(np.int32)}
  _S.update(batch=runner.put_batch(host), key=runner.put_rng(rng), batch_size=batch)
  compiled, phases = _compile(runner)
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  xla_flops = float((cost or {}).get('flops', 0.0)) * jax.device_count()  # cost is per device
  fresh = jax.tree.map(lambda x: x.copy(), _S['state'])  # the step donates its state; keep ours
  _S.update(step=compiled, train_state=runner.put_state(fresh))
  eval_batch = {**host, 'mask': np.ones(batch, np.float32)}
  replicated = NamedSharding(mesh, P())
  _S['eval_batch'] = jax.device_put(eval_batch, NamedSharding(mesh, P(parallel.AXIS)))
  _S['eval_state'] = jax.device_put(evaluation.eval_variables(state), replicated)
  totals = jax.device_put({'loss': np.zeros((), np.float32), 'top_k': np.zeros((), np.int32),
                           'confusion': np.zeros((NUM_CLASSES,) * 2, np.int32)}, replicated)
  # What evaluation computes per batch, on inputs already normalised (an identity Preprocess).
  accumulate = functools.partial(
      evaluation.accumulate, model=net, k=5,
      prep=Preprocess(np.zeros(1, np.float32), np.ones(1, np.float32), 0, False))
  eval_compiled, eval_compile_s = _timed(lambda: jax.jit(
      lambda variables, batch: accumulate(variables, totals, batch)).lower(
          _S['eval_state'], _S['eval_batch']).compile())
  _S['eval'] = eval_compiled
  summary = models.summarize(net, IMAGE_SHAPE)
  return {'params': summary.params, 'macs': summary.macs, 'init_s': init_s, **phases,
          'eval_compile_s': eval_compile_s, 'xla_flops': xla_flops,
          'backend': jax.default_backend(), 'devices': jax.device_count(),
          'cpu_devices': CPU_DEVICES}


def compile_again() -> dict[str, float]:
  """The same step traced, lowered and compiled again from scratch (a repeat of the timing)."""
  _, phases = _compile(_runner())
  return phases


def train(steps: int) -> dict[str, float]:
  """`steps` SGD steps on the same batch; the clock stops when the last step's loss is ready."""
  def run():
    metrics = None
    for _ in range(steps):
      _S['train_state'], metrics = _S['step'](_S['train_state'], _S['batch'], _S['key'])
    jax.block_until_ready(metrics)
  return {'seconds': _timed(run)[1]}


def evaluate(steps: int) -> dict[str, float]:
  """`steps` eval-mode forward passes (loss and top-1/top-5 sums, as evaluation computes)."""
  def run():
    out = None
    for _ in range(steps):
      out = _S['eval'](_S['eval_state'], _S['eval_batch'])
    jax.block_until_ready(out)
  return {'seconds': _timed(run)[1]}


def matmul(n: int, reps: int) -> dict[str, Any]:
  """f32 (n, n) @ (n, n) GFLOP/s, one number per repetition after a warm-up."""
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
  mm = jax.jit(jnp.matmul)
  mm(a, b).block_until_ready()
  times = [_timed(lambda: mm(a, b).block_until_ready())[1] for _ in range(reps)]
  return {'gflops': [2 * n**3 / t / 1e9 for t in times], 'median_s': statistics.median(times)}


def info() -> dict[str, Any]:
  import flax
  import jaxlib
  name, why = backend.resolve(default.get_config().model)
  return {'jax': jax.__version__, 'jaxlib': jaxlib.__version__, 'flax': flax.__version__,
          'numpy': np.__version__, 'python': sys.version.split()[0],
          'backend': jax.default_backend(), 'devices': jax.device_count(),
          'convolutions': f'{name} ({why})'}


HANDLERS = {'setup': setup, 'compile': compile_again, 'train': train, 'eval': evaluate,
            'matmul': matmul, 'info': info}

if __name__ == '__main__':
  protocol.serve(HANDLERS)
