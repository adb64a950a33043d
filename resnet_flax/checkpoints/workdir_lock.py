"""One training run per workdir: a lock file naming its holder (host and pid).

Two runs on one workdir would interleave metrics.jsonl and clean up each other's
checkpoints in flight. The lock is `workdir/train.lock`, created with O_EXCL (atomic, also
on network filesystems); it holds one JSON line {"host", "pid"} so that a refusal can
name the run that holds it. A lock left by a process that died (kill -9, a crash, a
lost node) is taken over when that process was on this host and no longer exists; a
lock from another host cannot be checked from here, so the message says how to remove it.

Multi-process runs share one workdir: process 0 alone takes the lock, as it alone writes
metrics and results (per-process locks would not stop a second run whose process count or
hosts differ). The other processes learn the outcome from process 0, so a refused run
stops on every process together.
"""

import atexit
import json
import os
import socket
import time
from typing import Any

from resnet_flax.errors import UserError
from resnet_flax.training import startup_signals

LOCK_NAME = 'train.lock'


def _holder() -> dict[str, Any]:
  return {'host': socket.gethostname(), 'pid': os.getpid()}


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # someone else's process: it exists
    return True
  return True


class WorkdirLock:
  """`workdir/train.lock` held by this process until `release()` (or interpreter exit)."""

  def __init__(self, workdir: str):
    self.path = os.path.join(os.path.abspath(workdir), LOCK_NAME)
    self.held = False

  def acquire(self) -> 'WorkdirLock':
    """Takes the lock, or raises UserError naming the live run that holds it."""
    me = _holder()
    for _ in range(3):  # a takeover races at most with another starting run
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        holder = self._read()
        if holder is None:  # being written by a run starting this instant, or empty
          time.sleep(0.2)
          continue
        if holder == me:  # this process's own lock, left by an earlier call that failed
          self.held = True
          break
        if holder.get('host') != me['host'] or _alive(int(holder.get('pid', -1))):
          raise self._refusal(holder)
        print(f'Taking over {self.path}: its holder, pid {holder["pid"]} on this host, has '
              'exited.')
        self._remove()
        continue
      with os.fdopen(fd, 'w') as f:
        f.write(json.dumps(me) + '\n')
      self.held = True
      break
    if not self.held:
      raise self._refusal(self._read() or {'host': '?', 'pid': '?'})
    atexit.register(self.release)
    startup_signals.on_stop(self.release)  # a signal outside the loop ends with os._exit
    return self

  def release(self) -> None:
    """Removes the lock if this process holds it; safe to call more than once."""
    if self.held and self._read() == _holder():
      self._remove()
    self.held = False

  def _read(self) -> dict[str, Any] | None:
    try:
      with open(self.path) as f:
        holder = json.loads(f.read())
    except (OSError, ValueError):
      return None
    return holder if isinstance(holder, dict) else None

  def _remove(self) -> None:
    try:
      os.remove(self.path)
    except FileNotFoundError:
      pass

  def _refusal(self, holder: dict[str, Any]) -> UserError:
    return UserError(
        f'Another training run is using this --workdir: {self.path} is held by pid '
        f'{holder.get("pid")} on host {holder.get("host")}. Two runs on one workdir would mix '
        'their metrics and checkpoints. Wait for that run to finish or stop it (it saves on '
        'SIGTERM), or use another --workdir. If that process no longer exists (a lost node), '
        f'delete {self.path} and rerun.')


def acquire(workdir: str, process_index: int, process_count: int) -> WorkdirLock:
  """Process 0 takes the workdir's lock; in a multi-process run the others stop with it."""
  lock = WorkdirLock(workdir)
  error = None
  if process_index == 0:
    try:
      lock.acquire()
    except UserError as e:
      error = e
  if process_count > 1:
    import numpy as np  # pylint: disable=g-import-not-at-top
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    refused = bool(multihost_utils.broadcast_one_to_all(np.array(error is not None)))
    if refused and error is None:
      error = UserError(f'Process 0 of this run could not take {lock.path}: another training '
                        'run is using this --workdir (process 0 names it). Use another '
                        '--workdir, or stop the other run.')
  if error is not None:
    raise error
  return lock
