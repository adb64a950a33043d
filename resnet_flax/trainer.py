"""`train_and_evaluate(config, workdir)`: the library seam that train.py and the tests call."""

import contextlib
import functools
import itertools
import os
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm
from jax.sharding import NamedSharding, PartitionSpec as P

from resnet_flax import (build, durations, models, optim, parallel, plot, report, resume,
                         steps)
from resnet_flax import data as data_lib
from resnet_flax.data import augment, on_device
from resnet_flax.checkpointing import Checkpointer, checkpoint_bytes
from resnet_flax.cpu import runtime as cpu_runtime
from resnet_flax.errors import UserError
from resnet_flax.metrics_log import MetricsLog
from resnet_flax.models import from_pytorch, scan_layout
from resnet_flax.preemption import PreemptionGuard
from resnet_flax.profiling import StepProfiler
from resnet_flax.train_state import TrainState, with_ema


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains `config` in `workdir`, resuming from its newest checkpoint; returns final metrics.

  A SIGTERM/SIGINT saves a checkpoint and returns early with {'preempted': True, ...}.
  """
  started = time.perf_counter()
  _check_intervals(config)
  parallel.check_config(config.parallel)
  # Before JAX starts: host allocator, CPU device split, compilation cache (resnet_flax.cpu).
  runtime = cpu_runtime.prepare(config)
  parallel.initialize_distributed(config.parallel)
  _check_writable(workdir)
  dataset = data_lib.load_dataset(config)
  mesh = parallel.data_mesh()
  _check_batch_sizes(config, dataset, jax.device_count(), jax.process_count())
  data_on_device = on_device.wanted(config.data.get('on_device', 'off'), dataset, jax.devices())
  replicated = NamedSharding(mesh, P())

  parts = runtime.parts(config.model, sharded_jit=parallel.sharded_jit(config.parallel))
  model = build.create_model(config.model, dataset.num_classes,
                             bn_axis_name=parallel.bn_axis_name(config.parallel), parts=parts)
  image_shape = data_lib.input_shape(dataset, config.data.image_size)
  data_lib.check_image_shape(image_shape)
  steps_per_epoch = data_lib.steps_per_epoch(len(dataset.train), config.batch_size)
  when = durations.resolve(config, steps_per_epoch)
  total_steps = when.total_steps
  state, schedule, dropout_rng = build.create_state(config, model, image_shape, steps_per_epoch)
  state = jax.device_put(state, replicated)
  _check_disk_space(workdir, state, config.checkpoint_keep + config.checkpoint_keep_best)

  log = MetricsLog(workdir, tensorboard=config.tensorboard)
  ckpt = Checkpointer(workdir, keep=config.checkpoint_keep, keep_best=config.checkpoint_keep_best,
                      best_metric=_best_metric(config, dataset))
  restored = ckpt.restore_latest_readable(
      state, check=lambda meta: resume.check_same_run(meta['config'], config, ckpt.directory))
  pending: list[dict[str, Any]] = []  # per-step training metrics not yet logged
  if restored:
    state, meta = restored
    pending = meta.get('pending', [])
    log.print(f'Resumed from {ckpt.directory} at step {int(state.step)}.')
  elif config.model.init_from:
    state = jax.device_put(_init_from_pytorch(state, model, config.model), replicated)
    log.print(f'Initialised from {config.model.init_from}.')
  log.drop_after(int(state.step))  # records a killed run wrote past its last checkpoint
  num_params = sum(x.size for x in jax.tree.leaves(state.params))
  log.print(_describe(config, model, dataset, image_shape, total_steps, data_on_device,
                      runtime.cpu_devices, parts.why, runtime.compile_cache))

  step_fn = functools.partial(
      steps.train_step, schedule=schedule, label_smoothing=config.optim.label_smoothing,
      sam=parallel.sam_mode(config), ema_decay=config.optim.ema_decay)
  if data_on_device:
    step_fn = on_device.feeding(
        step_fn, augment.Augment.from_config(config.augment), seed=config.seed,
        batch_size=config.batch_size, steps_per_epoch=steps_per_epoch,
        num_shards=jax.device_count(), sharding=NamedSharding(mesh, P(parallel.AXIS)))
  runner = parallel.DataParallel(config.parallel, mesh, step_fn, batch_sharded=not data_on_device)
  p_eval_step = jax.jit(steps.eval_step)
  device_data = (runner.put_data(on_device.put_on_device(dataset, runner.replicated,
                                                         config.data.image_size))
                 if data_on_device else None)
  step_rng = runner.put_rng(dropout_rng)
  to_device = functools.partial(jax.make_array_from_process_local_data, runner.sharded)
  process = {'process_index': jax.process_index(), 'process_count': jax.process_count()}

  evaluate = functools.partial(_evaluate, dataset, config, p_eval_step, to_device, process)

  def save(state: TrainState, metrics: dict[str, float] | None) -> None:
    _stop_if_not_finite(pending, int(state.step))  # never checkpoint a diverged state
    ckpt.save(state, {'config': config.to_dict(), 'step': int(state.step),
                      'epoch': int(state.step) / steps_per_epoch, 'seed': config.seed,
                      'pending': parallel.fetch_metrics(pending),
                      'data': _data_record(dataset, image_shape)},
              metrics=metrics)

  step = int(state.step)
  train_state = runner.put_state(state)  # the step's form of it (stacked per device under pmap)
  final = None  # the metrics of an evaluation at the final step
  timer = _Throughput(config.batch_size)
  profiler = StepProfiler(workdir, config.profile_steps)
  try:
    with PreemptionGuard() as guard:
      for epoch in range(step // steps_per_epoch, when.num_epochs):
        first = step - epoch * steps_per_epoch
        batches = (itertools.repeat(device_data, steps_per_epoch - first) if data_on_device else
                   data_lib.train_batches(dataset, config.augment, batch_size=config.batch_size,
                                          seed=config.seed, epoch=epoch, start_step=first,
                                          image_size=config.data.image_size, **process))
        bar = tqdm.tqdm(batches, total=steps_per_epoch, initial=first, leave=False,
                        desc=f'epoch {epoch + 1}/{when.num_epochs}',
                        disable=None if config.progress_bar and log.enabled else True)
        for batch in bar:
          profiler.before_step()
          inputs = batch if data_on_device else runner.put_batch(batch)
          train_state, metrics = runner.step(train_state, inputs, step_rng)
          profiler.after_step(metrics['loss'])
          step += 1
          pending.append(metrics)
          timer.tick(metrics['loss'])
          if when.log_now(step):
            pending = parallel.fetch_metrics(pending)  # one device-to-host read per log line
            record = _mean(pending) | {'step': step, 'epoch': step / steps_per_epoch,
                                       'images_per_sec': timer.rate()}
            _stop_if_not_finite(pending, step)
            pending = []
            log.write(record, f'step {step:>6} | train loss {record["loss"]:.4f} '
                      f'acc {record["accuracy"]:.2%} | lr {record["learning_rate"]:.4g} | '
                      + (f'{record["images_per_sec"]:.0f} img/s'
                         if np.isfinite(record['images_per_sec']) else 'compiling'))
            bar.set_postfix(loss=f'{record["loss"]:.3f}',
                            img_s=f'{record["images_per_sec"]:.0f}')
          last = step == total_steps
          evaluated = None
          preempted = guard.requested()
          eval_now = when.eval_now(step)
          save_now = preempted or when.checkpoint_now(step)
          if eval_now or save_now:
            with timer.paused():  # the logged img/s are training's alone
              state = runner.get_state(train_state)
              if eval_now:
                evaluated = evaluate(state)
                final = evaluated if last else None
                log.write({'step': step, 'epoch': step / steps_per_epoch, **evaluated},
                          _eval_line(step, step / steps_per_epoch, evaluated))
              if save_now:
                save(state, evaluated)
          if preempted:
            bar.close()
            ckpt.wait()
            log.print(f'Preempted: saved step {step} to {ckpt.directory}; rerun the same command '
                      'to resume.')
            return {'preempted': True, 'step': step}
          if last:
            break
        bar.close()
    ckpt.wait()
  finally:
    profiler.stop()
    ckpt.close()  # lets saves in flight finish: an error keeps the last good checkpoint

  state = runner.get_state(train_state)
  final = dict(final or evaluate(state))
  train_records = [r for r in log.read() if 'loss' in r]
  if train_records:
    final |= {'train_loss': train_records[-1]['loss'],
              'train_accuracy': train_records[-1]['accuracy']}
  final |= {'step': int(state.step), 'num_params': int(num_params)}
  log.close(config, final)
  if log.enabled:
    log.print(f'Finished {config.model.name} on {dataset.name}, step {final["step"]:,}:\n'
              + report.summary_table(log.read(), final, time.perf_counter() - started))
    if config.write_plots:
      log.print(f'Curves: {", ".join(plot.write_run_plots(workdir))}')
    report.write_results(workdir, final)
  return final


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
  state = state.replace(params=variables['params'], batch_stats=variables.get('batch_stats', {}))
  return with_ema(state) if state.ema is not None else state


def _evaluate(dataset: data_lib.Dataset, config: ml_collections.ConfigDict,
              eval_step: Callable[..., dict[str, jax.Array]], to_device: Callable[..., jax.Array],
              process: dict[str, int], state: TrainState) -> dict[str, float]:
  """Test metrics, and validation metrics ('val_*') when the dataset has that split.

  Sums over padded, masked batches divided by the true count: every image counts once.
  """
  metrics = {}
  for prefix, split in (('test', dataset.test), ('val', dataset.validation)):
    if split is None:
      continue
    totals = None
    for batch in data_lib.eval_batches(dataset, split, config.eval_batch_size,
                                       config.data.image_size, **process):
      out = eval_step(state, jax.tree.map(to_device, batch))
      totals = out if totals is None else jax.tree.map(jnp.add, totals, out)
    totals = jax.device_get(totals)
    metrics |= {f'{prefix}_loss': float(totals['loss'] / totals['count']),
                f'{prefix}_accuracy': float(totals['correct'] / totals['count']),
                f'{prefix}_top5_accuracy': float(totals['correct_top5'] / totals['count'])}
  return metrics


def _describe(config: ml_collections.ConfigDict, model: nn.Module, dataset: data_lib.Dataset,
              image_shape: tuple[int, ...], total_steps: int, data_on_device: bool,
              cpu_devices: str, parts: str, cache: str) -> str:
  """The model table and one line on how the run is laid out, printed at start."""
  table = models.summarize(model, image_shape).table(
      f'{config.model.name} on {dataset.name} ({len(dataset.train):,} train / '
      f'{len(dataset.test):,} test images, input {"x".join(map(str, image_shape))}):')
  devices = jax.device_count()
  lr = optim.peak_learning_rate(config.optim, config.batch_size)
  how = f' ({cpu_devices})' if jax.default_backend() == 'cpu' else ''
  return (f'{table}\n{jax.process_count()} process(es), {devices} {jax.default_backend()} '
          f'device(s){how}, {config.parallel.mode} with {config.parallel.batch_norm} BatchNorm, '
          f'{parts}, '
          f'training data {"on the device" if data_on_device else "from tf.data"}; '
          f'{total_steps:,} steps of {config.batch_size} ({config.batch_size // devices} per '
          f'device), peak lr {lr:g}; {cache}.')


def _data_record(dataset: data_lib.Dataset, image_shape: tuple[int, ...]) -> dict[str, Any]:
  """What evaluation and prediction need to know of the data without loading it.

  'mean' is per channel, or the per-pixel mean image at the input size (He et al.'s
  normalisation): prediction subtracts whichever it finds.
  """
  return {'name': dataset.name, 'image_shape': list(image_shape),
          'num_classes': dataset.num_classes,
          'mean': data_lib.normalization_mean(dataset, image_shape).tolist(),
          'std': list(dataset.std), 'label_names': list(dataset.label_names)}


def _eval_line(step: int, epoch: float, evaluated: dict[str, float]) -> str:
  val = (f' | val loss {evaluated["val_loss"]:.4f} acc {evaluated["val_accuracy"]:.2%}'
         if 'val_loss' in evaluated else '')
  return (f'step {step:>6} (epoch {epoch:.4g}) | test loss {evaluated["test_loss"]:.4f} '
          f'acc {evaluated["test_accuracy"]:.2%}{val}')


class _Throughput:
  """Training images per second between log points: not the first step (it compiles), nor the
  time spent `paused()` (evaluations and checkpoints)."""

  def __init__(self, batch_size: int, clock: Callable[[], float] = time.perf_counter):
    self.batch_size, self.clock = batch_size, clock
    self.start, self.steps, self.last = None, 0, None

  def tick(self, output: jax.Array) -> None:
    """Counts a step; `output` is one of its results (waited on to time the steps done)."""
    if self.start is None:
      output.block_until_ready()
      self.start = self.clock()
    else:
      self.steps += 1
    self.last = output

  @contextlib.contextmanager
  def paused(self) -> Iterator[None]:
    """The steps dispatched so far count up to their end; the time inside does not count."""
    if self.last is not None:
      self.last.block_until_ready()
    begin = self.clock()
    try:
      yield
    finally:
      if self.start is not None:
        self.start += self.clock() - begin

  def rate(self) -> float:
    if not self.steps:
      return float('nan')
    self.last.block_until_ready()
    now = self.clock()
    rate = self.steps * self.batch_size / (now - self.start)
    self.start, self.steps = now, 0
    return rate


def _mean(metrics: list[dict[str, Any]]) -> dict[str, float]:
  """Means in float32, whether a value came from the device or from a checkpoint's record."""
  values = parallel.fetch_metrics(metrics)
  return {k: float(np.mean(np.asarray([m[k] for m in values], np.float32))) for k in values[0]}


def _stop_if_not_finite(pending: list[dict[str, Any]], step: int) -> None:
  """Stops at the first non-finite loss among the steps that end at `step`, naming it."""
  losses = [m['loss'] for m in parallel.fetch_metrics(pending)]
  bad = [i for i, loss in enumerate(losses) if not np.isfinite(loss)]
  if bad:
    raise UserError(f'The training loss became {losses[bad[0]]} at step '
                    f'{step - len(losses) + bad[0] + 1}. The last checkpoint is kept; lower '
                    '--config.optim.learning_rate, clip gradients '
                    '(--config.optim.clip_grad_norm) or warm up (--config.optim.warmup_epochs; '
                    'he_warmup_steps for the he2016 schedule) in a new --workdir.')


def _best_metric(config: ml_collections.ConfigDict, dataset: data_lib.Dataset) -> str:
  valid = ['test_accuracy', 'test_loss'] + (['val_accuracy', 'val_loss'] if dataset.validation
                                            else [])
  if config.checkpoint_best_metric not in valid:
    raise UserError(f'--config.checkpoint_best_metric={config.checkpoint_best_metric!r}: use '
                    f'one of {", ".join(map(repr, valid))} (accuracies are kept when highest, '
                    'losses when lowest; the val_ ones need --config.data.validation_size).')
  return config.checkpoint_best_metric


def _check_writable(workdir: str) -> None:
  probe = os.path.join(workdir, f'.write-test-{os.getpid()}')
  try:
    os.makedirs(workdir, exist_ok=True)
    with open(probe, 'w') as f:
      f.write('ok')
    os.remove(probe)
  except OSError as e:
    raise UserError(f'Cannot write to --workdir={workdir} ({e.strerror or e}). Choose a '
                    'directory you can write to.') from None


def _check_disk_space(workdir: str, state: TrainState, copies: int) -> None:
  """Fails at start, not at the first save, when the checkpoints cannot fit."""
  need = checkpoint_bytes(state) * (copies + 1)  # +1: a new one is written before an old one goes
  free = shutil.disk_usage(workdir).free
  if free < need:
    raise UserError(f'{workdir} has {free / 2**20:,.0f} MiB free, but its checkpoints need about '
                    f'{need / 2**20:,.0f} MiB. Free disk space, lower '
                    '--config.checkpoint_keep, or use another --workdir.')


def _check_intervals(config: ml_collections.ConfigDict) -> None:
  """The checkpoint policy; durations.resolve checks the lengths and intervals."""
  if config.checkpoint_keep < 1:
    raise UserError(f'--config.checkpoint_keep={config.checkpoint_keep} must be at least 1 '
                    '(checkpoint_keep_best=0 turns the best-checkpoint copies off).')
  if config.checkpoint_keep_best < 0:
    raise UserError(f'--config.checkpoint_keep_best={config.checkpoint_keep_best} must be 0 '
                    '(off) or more.')


def _check_batch_sizes(config: ml_collections.ConfigDict, dataset: data_lib.Dataset,
                       devices: int, processes: int) -> None:
  for key in ('batch_size', 'eval_batch_size'):
    if config[key] % devices:
      raise UserError(f'--config.{key}={config[key]} is not divisible by the {devices} devices '
                      f'({processes} process(es)) that share it: it is the global batch. Use a '
                      'multiple of the device count.')
  if config.batch_size > len(dataset.train):
    raise UserError(f'--config.batch_size={config.batch_size} exceeds the {len(dataset.train)} '
                    'training images; not a single batch fits in an epoch.')
