"""The console: one step line every log_every_steps (and at the last step) saying where the run
is, through the 'resnet_flax' logger, while metrics.jsonl keeps its records."""

import json
import logging
import os
import re

import pytest

from resnet_flax import train_and_evaluate
from resnet_flax.reporting.progress import Eta, duration
from tests.conftest import small_config

STEP_LINE = re.compile(r'^step (\d)/6 \| epoch (\d)/2 \| train loss \d+\.\d{4} acc [\d.]+% \| '
                       r'lr \S+ \| (?:\d+ img/s|compiling) \| ETA (\S+)$')
TEST_LINE = re.compile(r'^step (\d)/6 \| epoch (\d)/2 \| test loss ')


class Lines(logging.Handler):
  def __init__(self):
    super().__init__()
    self.lines = []

  def emit(self, record):
    self.lines.append(record.getMessage())


@pytest.fixture
def captured():
  """A handler of the user's on 'resnet_flax': the run's lines go there, not to stdout."""
  logger, handler = logging.getLogger('resnet_flax'), Lines()
  saved = logger.handlers[:], logger.level, logger.propagate
  logger.handlers[:] = [handler]
  logger.setLevel(logging.INFO)
  yield handler.lines
  logger.handlers[:], logger.level, logger.propagate = saved


def test_step_lines_at_one_cadence_with_step_epoch_rate_and_eta(tmp_path, captured, capsys):
  # 96 images in batches of 32: 3 steps an epoch, 6 in all; records every 2 steps and at epoch
  # ends (steps 2, 3, 4, 6), console lines every 2 steps (2, 4, 6).
  train_and_evaluate(small_config(log_every_steps=2, tensorboard=False, write_plots=False),
                     str(tmp_path))
  steps = [STEP_LINE.match(line) for line in captured if line.startswith('step')
           and 'train loss' in line]
  assert all(steps), [line for line in captured if line.startswith('step')]
  assert [(int(m[1]), int(m[2])) for m in steps] == [(2, 1), (4, 2), (6, 2)]
  assert [m[3] for m in steps][-1] == '0s'  # nothing left at the last step
  tests = [TEST_LINE.match(line) for line in captured if 'test loss' in line]
  assert [(int(m[1]), int(m[2])) for m in tests] == [(3, 1), (6, 2)]
  with open(os.path.join(tmp_path, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f]
  train = [r for r in records if 'loss' in r]
  assert [r['step'] for r in train] == [2, 3, 4, 6]
  # each step's lr, for plots: the steps each record averages
  assert [len(r['learning_rate_steps']) for r in train] == [2, 1, 1, 2]
  assert all(abs(sum(r['learning_rate_steps']) / len(r['learning_rate_steps'])
                 - r['learning_rate']) < 1e-6 for r in train)
  assert 'train loss' not in capsys.readouterr().out  # the user's handler took them


def test_eta_counts_from_the_first_finished_step():
  now = [100.0]

  class Done:
    def block_until_ready(self):
      pass

  eta = Eta(total_steps=101, clock=lambda: now[0])
  eta.tick(1, Done())  # the first step (compiled) ends at t=100
  assert eta.left(1) == '?'
  now[0] = 120.0  # 10 more steps in 20 s: 2 s a step, 90 steps left
  assert eta.left(11) == '3m00s'
  assert [duration(s) for s in (44.6, 725, 10920)] == ['45s', '12m05s', '3h02m']
