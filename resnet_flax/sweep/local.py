"""The local launcher: trials as train.py subprocesses, one or N at a time.

With GPUs, N trials run at once on disjoint devices: each gets CUDA_VISIBLE_DEVICES set to its
share of the visible GPUs ($CUDA_VISIBLE_DEVICES, else those `nvidia-smi -L` lists), so N must not
exceed the GPU count. On CPU the N processes share the cores (each JAX process would use them all),
which pays off when startup and compilation, not the steps, dominate (tiny trials) or there are
many cores.
"""

import dataclasses
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, TextIO

from resnet_flax.errors import UserError
from resnet_flax.sweep import status
from resnet_flax.sweep.spec import TRAIN_PY, Sweep, Trial

_POLL_SECONDS = 0.2


@dataclasses.dataclass
class _Running:
  trial: Trial
  number: int
  process: subprocess.Popen
  log: TextIO
  started: float


def visible_gpus() -> list[str]:
  """GPU ids this process may use, found without importing JAX (which would claim them)."""
  if 'CUDA_VISIBLE_DEVICES' in os.environ:
    return [d for d in os.environ['CUDA_VISIBLE_DEVICES'].split(',') if d.strip()]
  if not shutil.which('nvidia-smi'):
    return []
  try:
    listing = subprocess.run(['nvidia-smi', '-L'], capture_output=True, text=True, timeout=30,
                             check=False)
  except (OSError, subprocess.TimeoutExpired):
    return []
  return [str(i) for i, line in enumerate(listing.stdout.splitlines()) if line.startswith('GPU')]


def device_slots(parallel: int, gpus: list[str]) -> list[dict[str, str]]:
  """The environment of each of the `parallel` slots: disjoint GPU sets, or nothing on CPU."""
  if parallel < 1:
    raise UserError(f'--parallel {parallel}: run at least one trial at a time.')
  if not gpus:
    return [{} for _ in range(parallel)]
  if parallel > len(gpus):
    raise UserError(f'--parallel {parallel} needs {parallel} GPUs for disjoint devices, but '
                    f'{len(gpus)} are visible ({",".join(gpus)}). Use --parallel {len(gpus)} '
                    'or fewer.')
  share = len(gpus) // parallel
  return [{'CUDA_VISIBLE_DEVICES': ','.join(gpus[i * share:(i + 1) * share])}
          for i in range(parallel)]


def run_trials(sweep: Sweep, all_trials: list[Trial], workdir: str, parallel: int) -> bool:
  """Runs every unfinished trial; True when all finished. Failures are reported, not raised."""
  slots = device_slots(parallel, visible_gpus())
  total = len(all_trials)
  queue = []
  for number, trial in enumerate(all_trials, 1):
    if status.finished(os.path.join(workdir, trial.name)):
      print(f'[{number}/{total}] skip {trial.name}: finished earlier (results.json)')
    else:
      queue.append((number, trial))
  free = list(range(len(slots)))
  running: dict[int, _Running] = {}
  ok = True
  previous = signal.signal(signal.SIGTERM, _raise_interrupt)
  try:
    while queue or running:
      while queue and free:
        slot = free.pop(0)
        number, trial = queue.pop(0)
        running[slot] = _start(sweep, trial, number, total, workdir, slots[slot])
      time.sleep(_POLL_SECONDS)
      for slot, run in list(running.items()):
        if run.process.poll() is not None:
          ok &= _finish(run, total, workdir)
          del running[slot]
          free.append(slot)
  except KeyboardInterrupt:
    for run in running.values():  # each saves a checkpoint at its next step and exits 0
      run.process.send_signal(signal.SIGTERM)
    for run in running.values():
      run.process.wait()
      _finish(run, total, workdir)
    print('Interrupted: the running trials saved checkpoints. Rerun the same command to resume.')
    return False
  finally:
    signal.signal(signal.SIGTERM, previous)
  return ok


def _raise_interrupt(signum: int, frame: Any) -> None:
  del signum, frame
  raise KeyboardInterrupt


def _start(sweep: Sweep, trial: Trial, number: int, total: int, workdir: str,
           env: dict[str, str]) -> _Running:
  trial_dir = os.path.join(workdir, trial.name)
  os.makedirs(trial_dir, exist_ok=True)
  command = [sys.executable, TRAIN_PY, *trial.args(sweep, workdir)]
  # open while the trial runs; _finish closes it
  log = open(os.path.join(trial_dir, 'log.txt'), 'a')  # noqa: SIM115
  devices = f' on GPU {env["CUDA_VISIBLE_DEVICES"]}' if env else ''
  status.write_start(log, shlex.join(command) + devices)
  child_env = dict(os.environ, PYTHONUNBUFFERED='1', **env)  # the log follows the run live
  child_env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=child_env,
                             cwd=os.path.dirname(TRAIN_PY), stdin=subprocess.DEVNULL)
  print(f'[{number}/{total}] start {trial.name}{devices}')
  return _Running(trial, number, process, log, time.time())


def _finish(run: _Running, total: int, workdir: str) -> bool:
  """Logs the exit, prints the outcome; True when the trial finished."""
  code = run.process.returncode
  seconds = time.time() - run.started
  status.write_exit(run.log, code, seconds)
  run.log.close()
  trial_dir = os.path.join(workdir, run.trial.name)
  head = f'[{run.number}/{total}]'
  if status.finished(trial_dir):
    accuracy = status.final_metrics(trial_dir).get('test_accuracy')
    shown = f': test accuracy {accuracy:.2%}' if isinstance(accuracy, float) else ''
    print(f'{head} done  {run.trial.name}{shown} ({seconds:.0f} s)')
    return True
  log_path = os.path.join(trial_dir, 'log.txt')
  if code == 0:
    print(f'{head} stopped {run.trial.name} before the end (preempted); rerun to resume. '
          f'Log: {log_path}')
  else:
    print(f'{head} FAILED {run.trial.name} (exit status {code}): {status.last_line(log_path)}\n'
          f'    the whole log: {log_path}', file=sys.stderr)
  return False
