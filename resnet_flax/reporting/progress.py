"""What the training loop reports as it goes: step and evaluation lines, training throughput, a
per-epoch progress bar, and the stop at the first non-finite loss."""

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jax
import numpy as np
import tqdm

from resnet_flax.errors import UserError
from resnet_flax.reporting.metrics_log import MetricsLog
from resnet_flax.training.parallel import fetch_metrics


class Progress:
  """Per-step training metrics, averaged into one line every `log_now(step)`."""

  def __init__(self, log: MetricsLog, batch_size: int, steps_per_epoch: int, num_epochs: int,
               show_bar: bool, pending: list[dict[str, Any]]):
    """`pending`: metrics of steps not yet logged (a resumed checkpoint carries them)."""
    self.log, self.steps_per_epoch, self.num_epochs = log, steps_per_epoch, num_epochs
    self.show_bar = show_bar and log.enabled
    self.pending = pending
    self.timer = Throughput(batch_size)
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

  def step_done(self, step: int, metrics: dict[str, jax.Array], log_now: bool) -> None:
    self.pending.append(metrics)
    self.timer.tick(metrics['loss'])
    if not log_now:
      return
    self.pending = fetch_metrics(self.pending)  # one device-to-host read per log line
    record = mean(self.pending) | {'step': step, 'epoch': step / self.steps_per_epoch,
                                   'images_per_sec': self.timer.rate()}
    self.check_finite(step)
    self.pending = []
    rate = record['images_per_sec']
    self.log.write(record, f'step {step:>6} | train loss {record["loss"]:.4f} '
                   f'acc {record["accuracy"]:.2%} | lr {record["learning_rate"]:.4g} | '
                   + (f'{rate:.0f} img/s' if np.isfinite(rate) else 'compiling'))
    if self._bar is not None:
      self._bar.set_postfix(loss=f'{record["loss"]:.3f}', img_s=f'{rate:.0f}')

  def evaluated(self, step: int, metrics: dict[str, float]) -> None:
    epoch = step / self.steps_per_epoch
    val = (f' | val loss {metrics["val_loss"]:.4f} acc {metrics["val_accuracy"]:.2%}'
           if 'val_loss' in metrics else '')
    self.log.write({'step': step, 'epoch': epoch, **metrics},
                   f'step {step:>6} (epoch {epoch:.4g}) | test loss {metrics["test_loss"]:.4f} '
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


def mean(metrics: list[dict[str, Any]]) -> dict[str, float]:
  """Means in float32, whether a value came from the device or from a checkpoint's record."""
  values = fetch_metrics(metrics)
  return {k: float(np.mean(np.asarray([m[k] for m in values], np.float32))) for k in values[0]}
