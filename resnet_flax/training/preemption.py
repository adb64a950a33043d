"""SIGTERM / SIGINT ask training to checkpoint and stop at a step boundary.

Single-process runs act on the signal at the next step, with no collective. Multi-process
runs must save the same step on every process, so they agree: every
`check_every_steps` steps (config.parallel.preemption_check_every_steps) each process
shares its flag with a `process_allgather`, a host-wide sync that is too costly at every
step on GPU clusters. The step count is the same on all processes, so all of them check,
and stop, at the same step. (JAX's `multihost_utils.reached_preemption_sync_point` avoids
even that sync, but it hears only SIGTERM, through a C++ handler that the coordination
service installs and that this Python handler would replace.)

Outside the loop, train.py's `startup_signals` handle the signals; the guard takes them
over on entry and hands them back on exit.
"""

import signal
import threading
import types

import jax
import numpy as np
from jax.experimental import multihost_utils

from resnet_flax.training import startup_signals


class PreemptionGuard:
  """Context manager; `requested(step)` is True on every process once any process got a signal."""

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self, check_every_steps: int = 1):
    self._flag = False
    self._every = max(1, check_every_steps)
    self._previous = {}

  def __enter__(self) -> 'PreemptionGuard':
    if threading.current_thread() is threading.main_thread():  # handlers only install there
      for sig in self.SIGNALS:
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    startup_signals.after_training()
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)

  def _handle(self, signum: int, frame: types.FrameType | None) -> None:
    del frame
    if not self._flag:
      print(f'\nReceived {signal.Signals(signum).name}: saving a checkpoint and stopping.',
            flush=True)
    self._flag = True

  def requested(self, step: int, final: bool = False) -> bool:
    """Whether to save and stop after `step`; `final` (the loop's end) checks whatever the step.

    Every process must call it at the same steps: in multi-process runs it is a collective.
    """
    if jax.process_count() == 1:
      return self._flag
    if step % self._every and not final:
      return False
    return bool(np.any(multihost_utils.process_allgather(np.array(self._flag))))
