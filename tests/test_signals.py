"""SIGTERM / SIGINT at every moment of a run: exit 0, one line, no traceback, nothing lost.

Mid-training signals are tested in test_checkpointing (test_sigterm_saves_exits_0_and_resumes).
"""

import os
import signal
import time

import pytest

from resnet_flax.checkpoints.checkpointing import SLOW_WAIT_TEST_HOOK
from resnet_flax.checkpoints.workdir_lock import LOCK_NAME
from tests.test_checkpointing import run, start, wait_until


def finish(proc):
  out, err = proc.communicate(timeout=120)
  assert 'Traceback' not in out + err, err[-3000:]
  return proc.returncode, out, err


def test_signal_during_imports_stops_at_once_with_exit_0(tmp_path):
  proc = start(tmp_path)
  time.sleep(1.0)  # train.py is importing TensorFlow and JAX
  assert proc.poll() is None
  proc.send_signal(signal.SIGTERM)
  code, out, err = finish(proc)
  assert code == 0, err
  assert 'Received SIGTERM before the first step: nothing to save yet' in out
  assert not (tmp_path / 'checkpoints').exists()


@pytest.mark.slow
def test_signal_during_data_loading_stops_and_releases_the_lock(tmp_path):
  proc = start(tmp_path)
  assert wait_until(lambda: (tmp_path / LOCK_NAME).exists(), proc)  # past imports, before step 1
  proc.send_signal(signal.SIGINT)
  code, out, err = finish(proc)
  assert code == 0, err
  assert 'Received SIGINT before the first step: nothing to save yet' in out
  assert not (tmp_path / LOCK_NAME).exists()
  code, out, err = run(tmp_path)  # the workdir is free and the run is whole
  assert code == 0 and 'Traceback' not in out + err, err


@pytest.mark.slow
def test_signal_during_the_final_save_waits_for_it_and_exits_0(tmp_path):
  proc = start(tmp_path, env={SLOW_WAIT_TEST_HOOK: '4'})
  while True:  # the hook announces the final wait on stdout, flushed
    line = proc.stdout.readline()
    assert line, 'the run ended before its final save'
    if line.startswith('test hook: waiting'):
      break
  proc.send_signal(signal.SIGINT)
  code, out, err = finish(proc)
  assert code == 0, err
  assert 'Stopped after saving step 18' in out
  assert os.path.isdir(tmp_path / 'checkpoints' / '18')
  code, out, err = run(tmp_path)  # finished: the rerun evaluates and writes the results
  assert code == 0 and 'Resumed from' in out and (tmp_path / 'results.json').exists(), err
