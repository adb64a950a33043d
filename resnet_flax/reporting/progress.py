"""What the training loop reports as it goes: step and evaluation lines, training throughput, a
per-epoch progress bar, and the stop at the first non-finite loss.

metrics.jsonl gets a training record every `log_now(step)` (log_every_steps and epoch ends); the
console gets one line at a single cadence, every log_every_steps and at the last step, each
saying `step s/S | epoch e/E | ... | img/s | ETA`, on a terminal and in a log file alike.
"""

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jax
import numpy as np
import tqdm

from resnet_flax.errors import UserError
from resnet_flax.reporting.metrics_log import MetricsLog
from resnet_flax.training.durations import Durations
from resnet_flax.training.parallel import fetch_metrics


class Progress:
  """Per-step training metrics, averaged into a record every `log_now(step)`."""

  def __init__(self, log: MetricsLog, batch_size: int, when: Durations, show_bar: bool,
               pending: list[dict[str, Any]], clock: Callable[[], float] = time.perf_counter):
    """`pending`: metrics of steps not yet logged (a resumed checkpoint carries them)."""
    self.log, self.when, self.clock = log, when, clock
    self.steps_per_epoch, self.num_epochs = when.steps_per_epoch, when.num_epochs
    self.show_bar = show_bar and log.enabled
    self.pending = pending
    self.timer = Throughput(batch_size, clock)
    self.eta = Eta(when.total_steps, clock)
    self._bar = None

  def epoch(self, epoch: int, first: int, inputs: Iterable[Any]) -> Iterator[Any]:
    """`inputs` of epoch `epoch` from its step `first`, behind a progress bar on terminals."""
    self._bar = tqdm.tqdm(inputs, total=self.steps_per_epoch, initial=first, leave=False,
                          desc=f'epoch {epoch + 1}/{self.num_epochs}',
                          disable=None if self.show_bar else True)
    try:
      yield from self._bar
    finally:
      self._bar.close()

  def where(self, step: int) -> str:
    """'step s/S | epoch e/E': the epoch that `step` ends or belongs to."""
    width = len(str(self.when.total_steps))
    epoch = (step - 1) // self.steps_per_epoch + 1 if step else 0
    return (f'step {step:>{width}}/{self.when.total_steps} | '
            f'epoch {epoch:>{len(str(self.num_epochs))}}/{self.num_epochs}')

  def step_done(self, step: int, metrics: dict[str, jax.Array], log_now: bool) -> None:
    self.pending.append(metrics)
    self.timer.tick(metrics['loss'])
    self.eta.tick(step, metrics['loss'])
    if not log_now:
      return
    self.pending = fetch_metrics(self.pending)  # one device-to-host read per record
    record = mean(self.pending) | {'step': step, 'epoch': step / self.steps_per_epoch,
                                   'images_per_sec': self.timer.rate(),
                                   # each step's own lr, which plots draw (not the mean)
                                   'learning_rate_steps': [float(np.float32(m['learning_rate']))
                                                           for m in self.pending]}
    self.check_finite(step)
    self.pending = []
    rate = record['images_per_sec']
    console = step % self.when.log_every == 0 or step == self.when.total_steps
    self.log.write(record, f'{self.where(step)} | train loss {record["loss"]:.4f} '
                   f'acc {record["accuracy"]:.2%} | lr {record["learning_rate"]:.4g} | '
                   + (f'{rate:.0f} img/s' if np.isfinite(rate) else 'compiling')
                   + f' | ETA {self.eta.left(step)}' if console else None)
    if self._bar is not None:
      self._bar.set_postfix(loss=f'{record["loss"]:.3f}', img_s=f'{rate:.0f}')

  def evaluated(self, step: int, metrics: dict[str, float]) -> None:
    epoch = step / self.steps_per_epoch
    val = (f' | val loss {metrics["val_loss"]:.4f} acc {metrics["val_accuracy"]:.2%}'
           if 'val_loss' in metrics else '')
    self.log.write({'step': step, 'epoch': epoch, **metrics},
                   f'{self.where(step)} | test loss {metrics["test_loss"]:.4f} '
                   f'acc {metrics["test_accuracy"]:.2%}{val}')

  def check_finite(self, step: int) -> None:
    """Stops at the first non-finite loss among the steps that end at `step`, naming it."""
    losses = [m['loss'] for m in fetch_metrics(self.pending)]
    bad = [i for i, loss in enumerate(losses) if not np.isfinite(loss)]
    if bad:
      raise UserError(f'The training loss became {losses[bad[0]]} at step '
                      f'{step - len(losses) + bad[0] + 1}. The last checkpoint is kept; lower '
                      '--config.optim.learning_rate, clip gradients '
                      '(--config.optim.clip_grad_norm) or warm up (--config.optim.warmup_epochs; '
                      'he_warmup_steps for the he2016 schedule) in a new --workdir.')


class Throughput:
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


class Eta:
  """Time left, from the wall-clock time per step since the first step finished (it compiles):
  evaluations and checkpoints count, as they will for the steps left."""

  def __init__(self, total_steps: int, clock: Callable[[], float] = time.perf_counter):
    self.total_steps, self.clock = total_steps, clock
    self.start, self.first = None, 0

  def tick(self, step: int, output: jax.Array) -> None:
    if self.start is None:
      output.block_until_ready()
      self.start, self.first = self.clock(), step

  def left(self, step: int) -> str:
    if self.start is None or step <= self.first:
      return '?'
    seconds = (self.clock() - self.start) / (step - self.first) * (self.total_steps - step)
    return duration(seconds)


def duration(seconds: float) -> str:
  """'45s', '12m05s', '3h02m'."""
  seconds = round(seconds)
  if seconds < 60:
    return f'{seconds}s'
  if seconds < 3600:
    return f'{seconds // 60}m{seconds % 60:02d}s'
  return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m'


def mean(metrics: list[dict[str, Any]]) -> dict[str, float]:
  """Means in float32, whether a value came from the device or from a checkpoint's record."""
  values = fetch_metrics(metrics)
  return {k: float(np.mean(np.asarray([m[k] for m in values], np.float32))) for k in values[0]}
