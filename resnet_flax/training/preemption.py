"""SIGTERM / SIGINT ask training to checkpoint and stop at the next step boundary."""

import signal
import threading
import types

import jax
import numpy as np
from jax.experimental import multihost_utils


class PreemptionGuard:
  """Context manager; `requested()` is True on every process once any process got a signal."""

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self._flag = False
    self._previous = {}

  def __enter__(self) -> 'PreemptionGuard':
    if threading.current_thread() is threading.main_thread():  # handlers only install there
      for sig in self.SIGNALS:
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)

  def _handle(self, signum: int, frame: types.FrameType | None) -> None:
    del frame
    self._flag = True
    print(f'\nReceived {signal.Signals(signum).name}: saving a checkpoint at the end of this step.')

  def requested(self) -> bool:
    """Agreed across processes, so that all of them save the same step together."""
    if jax.process_count() == 1:
      return self._flag
    return bool(np.any(multihost_utils.process_allgather(np.array(self._flag))))
