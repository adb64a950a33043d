"""The JSON-lines protocol between benchmarks/suite.py and its two workers (stdlib only).

Each side (ours in the project venv, PyTorch in the bench venv) is one long-lived process per
model: set up and compiled once, then asked for one measurement at a time, so the orchestrator
can interleave the sides (A, B, B, A, ...) and machine noise hits both alike. A worker idles
on its stdin while the other side runs.
"""

import json
import os
import select
import subprocess
import sys
import time
import traceback
from typing import Any, Callable

Handler = Callable[..., dict[str, Any]]
# A model name ending in this means ours with model.scan_blocks='on' (PyTorch: the same net).
SCAN = '_scan'
# ... in this: ours with model.dtype=bfloat16, PyTorch under torch.autocast('cpu', bfloat16).
BF16 = '_bf16'
# ... in this: ours with model.remat_blocks='off' (every block's activations kept for backward).
KEEP = '_keep'
# ... in this: ours with model.remat_blocks='on' (each block recomputed from its input).
REMAT = '_remat'


def log(msg: str) -> None:
  """The orchestrator's progress line on stderr, with the time."""
  print(f'[{time.strftime("%H:%M:%S")}] {msg}', file=sys.stderr, flush=True)


def base_name(name: str) -> str:
  """The model a suite name stands for: 'resnet110_scan' and 'resnet110_bf16' are ResNet-110s."""
  return name.removesuffix(KEEP).removesuffix(REMAT).removesuffix(SCAN).removesuffix(BF16)


def serve(handlers: dict[str, Handler]) -> None:
  """Worker loop: one JSON command per stdin line -> one JSON reply line.

  Replies go to a private copy of fd 1; fd 1 itself is pointed at stderr, so whatever a library
  prints (from Python or C) cannot corrupt the protocol.
  """
  reply_to = os.fdopen(os.dup(1), 'w')
  os.dup2(2, 1)
  sys.stdout = sys.stderr
  for line in sys.stdin:
    request = json.loads(line)
    cmd = request.pop('cmd')
    if cmd == 'quit':
      break
    try:
      reply = {'ok': True, **handlers[cmd](**request)}
    except Exception as e:  # pylint: disable=broad-except  (reported to the orchestrator)
      traceback.print_exc()
      reply = {'ok': False, 'error': f'{type(e).__name__}: {e}'}
    reply_to.write(json.dumps(reply) + '\n')
    reply_to.flush()


class Worker:
  """The orchestrator's handle on one worker process."""

  def __init__(self, name: str, argv: list[str], log_path: str, env: dict[str, str] | None = None,
               timeout: float = 1800):
    """Starts `argv`; its stderr (library warnings, tracebacks) goes to `log_path`."""
    self.name, self.log_path, self.timeout = name, log_path, timeout
    with open(log_path, 'w') as log:
      self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=log, text=True, env=env)

  def ask(self, cmd: str, **args: Any) -> dict[str, Any]:
    """Sends one command and waits (at most `timeout` s) for its reply; failures raise
    RuntimeError with the end of the worker's log."""
    assert self.proc.stdin and self.proc.stdout
    self.proc.stdin.write(json.dumps({'cmd': cmd, **args}) + '\n')
    self.proc.stdin.flush()
    if not select.select([self.proc.stdout], [], [], self.timeout)[0]:
      self.proc.kill()
      raise RuntimeError(f'{self.name} worker: no reply to {cmd!r} in {self.timeout:g} s'
                         + self._log_tail())
    line = self.proc.stdout.readline()
    if not line:
      raise RuntimeError(f'{self.name} worker exited (code {self.proc.wait()}) during {cmd!r}'
                         + self._log_tail())
    reply = json.loads(line)
    if not reply.pop('ok'):
      raise RuntimeError(f'{self.name} worker, {cmd!r}: {reply["error"]}' + self._log_tail())
    return reply

  def _log_tail(self, lines: int = 15) -> str:
    with open(self.log_path, errors='replace') as f:
      tail = f.read().splitlines()[-lines:]
    return f'\n  {self.log_path}, last lines:\n    ' + '\n    '.join(tail) if tail else ''

  def close(self) -> None:
    if self.proc.poll() is None:
      try:
        assert self.proc.stdin
        self.proc.stdin.write('{"cmd": "quit"}\n')
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
      except (OSError, subprocess.TimeoutExpired):
        self.proc.kill()
        self.proc.wait()
