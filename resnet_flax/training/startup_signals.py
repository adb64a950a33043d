"""SIGTERM / SIGINT outside the training loop: one line and exit status 0, never a traceback.

train.py installs this first, before its heavy imports (TensorFlow, JAX), so that a job
scheduler's SIGTERM or a Ctrl-C during imports, data loading, restore or compilation stops
the program cleanly: nothing has been trained yet, so there is nothing to save. The handler
prints one line, runs the callbacks given to `on_stop` (the workdir lock's release) and ends
the process with os._exit(0). (A SystemExit raised from a signal handler is not reliable: a
handler runs between any two bytecodes, inside garbage-collection callbacks and __del__
methods too, where the exception is printed with a traceback and ignored.) Before the first
step nothing is written that a sudden exit could leave half-done: metrics.jsonl is rewritten
atomically and orbax's temporary directories are cleaned up by the next run. From the first
step on, training.preemption.PreemptionGuard takes the signals over (it saves, then stops),
and hands them back when the loop has ended, with the message of `after_training()`.

Only the first signal acts: a second one during the shutdown it started is ignored, so
that it cannot interrupt the clean-up half-way.
"""

import os
import signal
import sys
import types
from typing import Callable

SIGNALS = (signal.SIGTERM, signal.SIGINT)
_BEFORE = 'before the first step: nothing to save yet; stopping.'
_AFTER = ('after the last checkpoint was saved: stopping. Rerun the same command for the final '
          'evaluation.')
_state = {'message': _BEFORE, 'stopping': False}
_on_stop: list[Callable[[], None]] = []


def install() -> None:
  """Handles SIGTERM and SIGINT from now on (main thread only, as Python requires)."""
  for sig in SIGNALS:
    signal.signal(sig, _handle)


def on_stop(callback: Callable[[], None]) -> None:
  """Runs `callback` (quick, idempotent) when a signal stops the program outside the loop."""
  _on_stop.append(callback)


def after_training() -> None:
  """From now on a signal means: the run's work is on disk, stop before the final evaluation."""
  _state['message'] = _AFTER


def _handle(signum: int, frame: types.FrameType | None) -> None:
  del frame
  if _state['stopping']:
    return
  _state['stopping'] = True
  print(f'\nReceived {signal.Signals(signum).name} {_state["message"]}', flush=True)
  for callback in reversed(_on_stop):
    try:
      callback()
    except Exception:  # pylint: disable=broad-except  # stopping anyway; nothing to report
      pass
  sys.stderr.flush()
  os._exit(0)  # pylint: disable=protected-access
