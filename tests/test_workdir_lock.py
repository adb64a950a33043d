"""One run per workdir: a live holder refuses a second run; a dead one's lock is taken over."""

import json
import os
import socket
import subprocess
import sys

import pytest

from resnet_flax.checkpoints import workdir_lock
from resnet_flax.errors import UserError
from tests.test_checkpointing import run

HOLD = '''
import sys, time
from resnet_flax.checkpoints.workdir_lock import WorkdirLock
WorkdirLock(sys.argv[1]).acquire()
print('held', flush=True)
time.sleep(120)
'''


def dead_pid() -> int:
  proc = subprocess.Popen([sys.executable, '-c', 'pass'])
  proc.wait()
  return proc.pid


def test_second_run_on_a_held_workdir_stops_at_start_naming_the_holder(tmp_path):
  holder = subprocess.Popen([sys.executable, '-c', HOLD, str(tmp_path)], stdout=subprocess.PIPE,
                            text=True, cwd=os.path.dirname(os.path.dirname(__file__)) or '.')
  try:
    assert holder.stdout.readline().strip() == 'held'
    code, out, err = run(tmp_path)
    assert code == 2, err
    assert f'held by pid {holder.pid} on host {socket.gethostname()}' in err
    assert 'Traceback' not in out + err
    assert not (tmp_path / 'checkpoints').exists() and not (tmp_path / 'metrics.jsonl').exists()
  finally:
    holder.kill()
    holder.wait()


def test_stale_lock_of_a_dead_process_is_taken_over_and_released(tmp_path, capsys):
  path = tmp_path / workdir_lock.LOCK_NAME
  path.write_text(json.dumps({'host': socket.gethostname(), 'pid': dead_pid()}))
  lock = workdir_lock.acquire(str(tmp_path), process_index=0, process_count=1)
  assert 'Taking over' in capsys.readouterr().out
  assert json.loads(path.read_text()) == {'host': socket.gethostname(), 'pid': os.getpid()}
  lock.release()
  assert not path.exists()


def test_lock_of_another_host_is_never_taken_over(tmp_path):
  path = tmp_path / workdir_lock.LOCK_NAME
  path.write_text(json.dumps({'host': 'elsewhere', 'pid': dead_pid()}))
  with pytest.raises(UserError, match='on host elsewhere.*delete'):
    workdir_lock.acquire(str(tmp_path), process_index=0, process_count=1)
  assert json.loads(path.read_text())['host'] == 'elsewhere'


def test_only_process_0_takes_the_lock(tmp_path):
  # process_count=1 here: the broadcast to the others needs a distributed run (test_parallel).
  workdir_lock.acquire(str(tmp_path), process_index=1, process_count=1)
  assert not (tmp_path / workdir_lock.LOCK_NAME).exists()


def test_a_finished_run_leaves_no_lock(tmp_path, make_config):
  from resnet_flax import train_and_evaluate
  train_and_evaluate(make_config(num_epochs=1), str(tmp_path))
  assert not (tmp_path / workdir_lock.LOCK_NAME).exists()
