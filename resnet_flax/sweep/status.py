"""What a trial's directory says about its run: finished, failed, stopped; its results.

Both launchers frame each train.py start in DIR/TRIAL/log.txt with marker lines,
`=== <date> <time> start: ...` and `=== <date> <time> exit <status> ...`, so `collect` can tell a
failed trial from a running one whichever launcher ran it.
"""

import json
import os
import re
import time
from typing import Any, TextIO

from resnet_flax.reporting.metrics_log import read_records

_MARKER = re.compile(r'^=== \S+ \S+ (start|exit (-?\d+))')


def finished(trial_dir: str) -> bool:
  """train.py writes results.json last, so its presence means the run is complete."""
  return os.path.isfile(os.path.join(trial_dir, 'results.json'))


def final_metrics(trial_dir: str) -> dict[str, Any]:
  with open(os.path.join(trial_dir, 'results.json')) as f:
    return json.load(f)


def best_test_accuracy(trial_dir: str) -> tuple[float, float] | None:
  """(accuracy, epoch) of the best evaluation in metrics.jsonl; None before the first."""
  path = os.path.join(trial_dir, 'metrics.jsonl')
  evals = [r for r in read_records(path) if 'test_accuracy' in r] if os.path.isfile(path) else []
  if not evals:
    return None
  best = max(evals, key=lambda r: r['test_accuracy'])  # the first of equals: the earliest epoch
  return best['test_accuracy'], best['epoch']


def status(trial_dir: str) -> str:
  """'finished', 'failed (exit N)', 'stopped' (exit 0 before the end: preempted),
  'running or killed' or 'not started'."""
  if finished(trial_dir):
    return 'finished'
  last = None
  log = os.path.join(trial_dir, 'log.txt')
  if os.path.isfile(log):
    with open(log, errors='replace') as f:
      for line in f:
        match = _MARKER.match(line)
        last = match or last
  if last is None:
    return 'not started'
  if last.group(1) == 'start':
    return 'running or killed'
  return 'stopped' if last.group(2) == '0' else f'failed (exit {last.group(2)})'


def write_start(log: TextIO, what: str) -> None:
  log.write(f'=== {_now()} start: {what}\n')
  log.flush()


def write_exit(log: TextIO, code: int, seconds: float) -> None:
  log.write(f'=== {_now()} exit {code} after {seconds:.0f} s\n')
  log.flush()


def last_line(log_path: str) -> str:
  """The last line of the run's own output: for train.py's errors, the `error: ...` paragraph."""
  with open(log_path, errors='replace') as f:
    lines = [line.strip() for line in f if line.strip() and not _MARKER.match(line)]
  return lines[-1] if lines else '(no output)'


def _now() -> str:
  return time.strftime('%Y-%m-%d %H:%M:%S')
