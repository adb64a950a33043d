"""`train_and_evaluate(config, workdir)`: the library seam that train.py and the tests call."""

import functools
import os
import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm
from jax.sharding import NamedSharding, PartitionSpec as P

from resnet_flax import data as data_lib
from resnet_flax import models, optim, steps
from resnet_flax.checkpointing import Checkpointer
from resnet_flax.models import from_pytorch, scan_layout
from resnet_flax.errors import UserError
from resnet_flax.metrics_log import MetricsLog
from resnet_flax.train_state import TrainState, create_train_state


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains `config` in `workdir`, resuming from its newest checkpoint; returns final metrics."""
  os.makedirs(workdir, exist_ok=True)
  dataset = data_lib.load_dataset(config)
  mesh = jax.make_mesh((jax.device_count(),), ('data',))
  _check_batch_sizes(config, dataset, jax.device_count())
  replicated, sharded = NamedSharding(mesh, P()), NamedSharding(mesh, P('data'))

  model = create_model(config.model, dataset.num_classes)
  image_shape = data_lib.input_shape(dataset, config.data.image_size)
  steps_per_epoch = data_lib.steps_per_epoch(len(dataset.train), config.batch_size)
  total_steps = config.num_epochs * steps_per_epoch
  schedule = optim.create_schedule(config.optim, steps_per_epoch, total_steps)
  tx = optim.create_optimizer(config.optim, schedule)
  init_rng, dropout_rng = jax.random.split(jax.random.key(config.seed))
  state = create_train_state(model, tx, init_rng, image_shape)
  state = jax.device_put(state, replicated)

  log = MetricsLog(workdir)
  ckpt = Checkpointer(workdir, keep=config.checkpoint_keep)
  if ckpt.latest_step() is not None:
    state, _ = ckpt.restore(state)
    log.drop_after(int(state.step))
    print(f'Resumed from {ckpt.directory} at step {int(state.step)}.')
  elif config.model.init_from:
    state = jax.device_put(_init_from_pytorch(state, model, config.model), replicated)
    print(f'Initialised from {config.model.init_from}.')
  num_params = sum(x.size for x in jax.tree.leaves(state.params))
  if log.enabled:
    print(models.summarize(model, image_shape).table(
        f'{config.model.name} on {dataset.name} ({len(dataset.train):,} train / '
        f'{len(dataset.test):,} test images, input {"x".join(map(str, image_shape))}):'))
    print(f'{jax.device_count()} {jax.default_backend()} device(s); {total_steps:,} steps of '
          f'{config.batch_size}.')

  p_train_step = jax.jit(functools.partial(steps.train_step, rng=dropout_rng, schedule=schedule),
                         donate_argnums=0)
  p_eval_step = jax.jit(steps.eval_step)
  to_device = functools.partial(jax.make_array_from_process_local_data, sharded)

  def evaluate(state: TrainState) -> dict[str, float]:
    totals = None
    for batch in data_lib.eval_batches(dataset, dataset.test, config.eval_batch_size,
                                        config.data.image_size):
      out = p_eval_step(state, jax.tree.map(to_device, batch))
      totals = out if totals is None else jax.tree.map(jnp.add, totals, out)
    totals = jax.device_get(totals)
    return {'test_loss': float(totals['loss'] / totals['count']),
            'test_accuracy': float(totals['correct'] / totals['count'])}

  step = int(state.step)
  final = None  # the metrics of an evaluation at the final step
  pending: list[dict[str, jax.Array]] = []
  timer = _Throughput(config.batch_size)
  for epoch in range(step // steps_per_epoch, config.num_epochs):
    batches = data_lib.train_batches(dataset, config.augment, batch_size=config.batch_size,
                                     seed=config.seed, epoch=epoch,
                                     start_step=step - epoch * steps_per_epoch,
                                     image_size=config.data.image_size)
    bar = tqdm.tqdm(batches, total=steps_per_epoch, initial=step - epoch * steps_per_epoch,
                    desc=f'epoch {epoch + 1}/{config.num_epochs}', leave=False,
                    disable=None if config.progress_bar and log.enabled else True)
    for batch in bar:
      state, metrics = p_train_step(state, jax.tree.map(to_device, batch))
      step += 1
      pending.append(metrics)
      timer.tick(state.step)
      if step % config.log_every_steps == 0 or step % steps_per_epoch == 0:
        record = _mean(pending) | {'step': step, 'epoch': step / steps_per_epoch,
                                   'images_per_sec': timer.rate()}
        pending = []
        _stop_if_not_finite(record, step)
        log.write(record, f'step {step:>6} | train loss {record["loss"]:.4f} '
                  f'acc {record["accuracy"]:.2%} | lr {record["learning_rate"]:.4g} | '
                  f'{record["images_per_sec"]:.0f} img/s')
        bar.set_postfix(loss=f'{record["loss"]:.3f}')
    bar.close()
    last = epoch + 1 == config.num_epochs
    if last or (epoch + 1) % config.eval_every_epochs == 0:
      result = final = evaluate(state)
      log.write({'step': step, 'epoch': epoch + 1, **result},
                f'epoch {epoch + 1:>4} | test loss {result["test_loss"]:.4f} '
                f'acc {result["test_accuracy"]:.2%}')
    if last or (epoch + 1) % config.checkpoint_every_epochs == 0:
      ckpt.save(state, {'epoch': epoch + 1, 'config': config.to_dict()})
  ckpt.wait()
  ckpt.close()

  final = dict(final or evaluate(state))
  train_records = [r for r in log.read() if 'loss' in r]
  if train_records:
    final |= {'train_loss': train_records[-1]['loss'], 'train_accuracy': train_records[-1]['accuracy']}
  final |= {'step': int(state.step), 'num_params': int(num_params)}
  print('Final: ' + ', '.join(f'{k} {v:.4f}' if isinstance(v, float) else f'{k} {v}'
                              for k, v in final.items()))
  return final


def create_model(cfg: ml_collections.ConfigDict, num_classes: int) -> nn.Module:
  """The model that `config.model` describes."""
  block_options = {k: cfg[k] for k in ('dropout_rate', 'zero_init_last_bn') if cfg[k]}
  return models.create_model(cfg.name, num_classes=num_classes, dtype=jnp.dtype(cfg.dtype),
                             bn_momentum=cfg.bn_momentum, bn_epsilon=cfg.bn_epsilon,
                             scan_blocks=cfg.scan_blocks, block_options=block_options)


def _init_from_pytorch(state: TrainState, model: nn.Module,
                       cfg: ml_collections.ConfigDict) -> TrainState:
  """`state` with params and BN statistics from a PyTorch checkpoint (the head kept if asked)."""
  own = {'params': state.params, 'batch_stats': state.batch_stats}
  if model.scan_blocks:  # PyTorch layouts are unrolled
    own = scan_layout.to_unscanned(own, model.stage_sizes)
  variables = from_pytorch.load_pytorch_weights(cfg.init_from, own,
                                                reinit_head=cfg.init_reinit_head,
                                                init_variables=own)
  if model.scan_blocks:
    variables = scan_layout.to_scanned(variables, model.stage_sizes)
  return state.replace(params=variables['params'], batch_stats=variables.get('batch_stats', {}))


class _Throughput:
  """Images per second between log points, excluding the first step (which compiles)."""

  def __init__(self, batch_size: int):
    self.batch_size, self.start, self.steps, self.last = batch_size, None, 0, None

  def tick(self, step_array: jax.Array) -> None:
    if self.start is None:
      step_array.block_until_ready()
      self.start = time.perf_counter()
    else:
      self.steps += 1
    self.last = step_array

  def rate(self) -> float:
    if not self.steps:
      return float('nan')
    self.last.block_until_ready()
    now = time.perf_counter()
    rate = self.steps * self.batch_size / (now - self.start)
    self.start, self.steps = now, 0
    return rate


def _mean(metrics: list[dict[str, jax.Array]]) -> dict[str, float]:
  stacked = jax.device_get(metrics)
  return {k: float(np.mean([m[k] for m in stacked])) for k in stacked[0]}


def _stop_if_not_finite(record: dict[str, float], step: int) -> None:
  if not np.isfinite(record['loss']):
    raise UserError(f'The training loss became {record["loss"]} by step {step}. The last '
                    'checkpoint is kept; lower --config.optim.learning_rate or add warm-up '
                    '(--config.optim.warmup_epochs) and rerun.')


def _check_batch_sizes(config: ml_collections.ConfigDict, dataset: data_lib.Dataset,
                       devices: int) -> None:
  for key in ('batch_size', 'eval_batch_size'):
    if config[key] % devices:
      raise UserError(f'--config.{key}={config[key]} is not divisible by the {devices} devices '
                      'that share it. Use a multiple of the device count.')
  if config.batch_size > len(dataset.train):
    raise UserError(f'--config.batch_size={config.batch_size} exceeds the {len(dataset.train)} '
                    'training images; not a single batch fits in an epoch.')
