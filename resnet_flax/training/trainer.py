"""`train_and_evaluate(config, workdir)`: the library seam that train.py and the tests call."""

import contextlib
import functools
import time
from typing import Any

import jax
import ml_collections
from jax.sharding import NamedSharding, PartitionSpec as P

from resnet_flax import data as data_lib
from resnet_flax.checkpoints import relayout, resume, workdir_lock
from resnet_flax.checkpoints.checkpointing import Checkpointer
from resnet_flax.cpu import runtime as cpu_runtime
from resnet_flax.data.feed import Feed
from resnet_flax.pytorch.init_from import init_from_pytorch
from resnet_flax.reporting import banner, plot, report
from resnet_flax.reporting.metrics_log import MetricsLog
from resnet_flax.reporting.profiling import StepProfiler
from resnet_flax.reporting.progress import Progress
from resnet_flax.reporting.writer import writer_factories
from resnet_flax.training import (build, checks, config_rules, durations, evaluation, parallel,
                                  steps)
from resnet_flax.training.preemption import PreemptionGuard
from resnet_flax.training.train_state import TrainState


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains `config` in `workdir`, resuming from its newest checkpoint; returns final metrics.

  A SIGTERM/SIGINT saves a checkpoint and returns early with {'preempted': True, ...}.
  """
  started = time.perf_counter()
  config_rules.validate(config)  # every field's type and range, before anything starts
  checks.check_intervals(config)
  parallel.check_config(config.parallel)
  # Before JAX starts: host allocator, CPU device split, compilation cache (resnet_flax.cpu).
  runtime = cpu_runtime.prepare(config)
  parallel.initialize_distributed(config.parallel)
  checks.check_writable(workdir)
  lock = workdir_lock.acquire(workdir, jax.process_index(), jax.process_count())
  # `cleanup` closes the checkpointer on any error before interpreter shutdown (orbax's threads
  # would print tracebacks otherwise), then releases the lock.
  with contextlib.ExitStack() as cleanup:
    cleanup.callback(lock.release)
    return _train(config, workdir, runtime, started, cleanup)


def _train(config: ml_collections.ConfigDict, workdir: str, runtime: cpu_runtime.Runtime,
           started: float, cleanup: contextlib.ExitStack) -> dict[str, Any]:
  # Before the data loads: a W&B project without the wandb package stops the run here.
  writers = writer_factories(config, workdir) if jax.process_index() == 0 else []
  dataset = data_lib.load_dataset(config)
  mesh = parallel.data_mesh()
  checks.check_batch_sizes(config, dataset, jax.device_count(), jax.process_count())
  feed = Feed(config, dataset, jax.devices())
  replicated = NamedSharding(mesh, P())

  parts = runtime.parts(config.model, sharded_jit=parallel.sharded_jit(config.parallel))
  model = build.create_model(config.model, dataset.num_classes,
                             bn_axis_name=parallel.bn_axis_name(config.parallel), parts=parts)
  image_shape = data_lib.input_shape(dataset, config.data.image_size)
  data_lib.check_image_shape(image_shape)
  steps_per_epoch = feed.steps_per_epoch
  when = durations.resolve(config, steps_per_epoch)
  total_steps = when.total_steps
  state, schedule, dropout_rng = build.create_state(config, model, image_shape, steps_per_epoch)
  state = jax.device_put(state, replicated)
  checks.check_disk_space(workdir, state, config.checkpoint_keep + config.checkpoint_keep_best)

  log = MetricsLog(workdir, writers)
  cleanup.callback(log.close)  # a preempted or failed run still ends its writers' files and runs
  ckpt = Checkpointer(workdir, keep=config.checkpoint_keep, keep_best=config.checkpoint_keep_best,
                      best_metric=checks.best_metric(config, dataset))
  cleanup.callback(ckpt.close)
  restored = ckpt.restore_latest_readable(
      state, check=lambda meta: resume.check_same_run(meta['config'], config, ckpt.directory),
      converters=lambda meta: relayout.converters(meta['config'], config,
                                                getattr(model, 'stage_sizes', ())))
  pending: list[dict[str, Any]] = []  # per-step training metrics not yet logged
  if restored:
    state, meta = restored
    state = jax.device_put(state, replicated)  # a converted layout comes back uncommitted
    pending = meta.get('pending', [])
    log.print(f'Resumed from {ckpt.directory} at step {int(state.step)}.')
  elif config.model.init_from:
    state = jax.device_put(init_from_pytorch(state, model, config.model), replicated)
    log.print(f'Initialised from {config.model.init_from}.')
  log.drop_after(int(state.step))  # records a killed run wrote past its last checkpoint
  num_params = sum(x.size for x in jax.tree.leaves(state.params))
  log.print(banner.describe(config, model, dataset, image_shape, total_steps, feed.where,
                      runtime.cpu_devices, parts.why, runtime.compile_cache))

  step_fn = functools.partial(
      steps.train_step, schedule=schedule, label_smoothing=config.optim.label_smoothing,
      sam=parallel.sam_mode(config), ema_decay=config.optim.ema_decay)
  step_fn = feed.wrap(step_fn, NamedSharding(mesh, P(parallel.AXIS)))
  runner = parallel.DataParallel(config.parallel, mesh, step_fn, batch_sharded=not feed.on_device)
  step_rng = runner.put_rng(dropout_rng)
  evaluator = evaluation.Evaluator(
      model, feed.prep, dataset.num_classes, replicated=runner.replicated,
      to_device=functools.partial(jax.make_array_from_process_local_data, runner.sharded))
  evaluate = functools.partial(evaluation.evaluate_splits, dataset, config.eval_batch_size,
                               evaluator)

  progress = Progress(log, config.batch_size, when, config.progress_bar, pending)

  def save(state: TrainState, metrics: dict[str, float] | None) -> None:
    progress.check_finite(int(state.step))  # never checkpoint a diverged state
    ckpt.save(state, {'config': config.to_dict(), 'step': int(state.step),
                      'epoch': int(state.step) / steps_per_epoch, 'seed': config.seed,
                      'pending': parallel.fetch_metrics(progress.pending),
                      'data': data_lib.data_record(dataset, image_shape)},
              metrics=metrics)

  step = int(state.step)
  train_state = runner.put_state(state)  # the step's form of it (stacked per device under pmap)
  final = None  # the metrics of an evaluation at the final step
  profiler = StepProfiler(workdir, config.profile_steps)
  try:
    with PreemptionGuard(config.parallel.preemption_check_every_steps) as guard:
      for epoch in range(step // steps_per_epoch, when.num_epochs):
        first = step - epoch * steps_per_epoch
        for inputs in progress.epoch(epoch, first, feed.epoch(epoch, first, runner)):
          profiler.before_step()
          train_state, metrics = runner.step(train_state, inputs, step_rng)
          profiler.after_step(metrics['loss'])
          step += 1
          progress.step_done(step, metrics, when.log_now(step))
          evaluated, preempted = None, guard.requested(step)
          eval_now, save_now = when.eval_now(step), preempted or when.checkpoint_now(step)
          if eval_now or save_now:
            with progress.timer.paused():  # the logged img/s are training's alone
              state = runner.get_state(train_state)
              if eval_now:
                evaluated = evaluate(state)
                final = evaluated if step == total_steps else None
                progress.evaluated(step, evaluated)
              if save_now:
                save(state, evaluated)
          if preempted:
            ckpt.wait()
            log.print(f'Preempted: saved step {step} to {ckpt.directory}; rerun the same command '
                      'to resume.')
            return {'preempted': True, 'step': step}
          if step == total_steps:
            break
      ckpt.wait()  # inside the guard: a signal now lets the final save finish, then stops
      if guard.requested(step, final=True):
        log.print(f'Stopped after saving step {step} to {ckpt.directory}; rerun the same '
                  'command to finish.')
        return {'preempted': True, 'step': step}
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


