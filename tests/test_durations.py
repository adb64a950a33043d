"""Training length and intervals in steps, epochs or examples, resolved by durations.resolve."""

import json
import math

import pytest

from resnet_flax.training import durations

from resnet_flax import train_and_evaluate
from resnet_flax.checkpoints.checkpointing import Checkpointer
from resnet_flax.errors import UserError


@pytest.mark.parametrize('overrides, total', [
    ({}, 2 * 3),  # small_config: 2 epochs of 96 // 32 = 3 steps
    ({'num_steps': 7}, 7),
    ({'num_examples': 100}, 4),  # 100 / 32 rounded up
    ({'num_examples': 96}, 3),
])
def test_training_length_in_any_unit(make_config, overrides, total):
  assert durations.resolve(make_config(**overrides), steps_per_epoch=3).total_steps == total


def test_intervals_in_epochs_and_steps(make_config):
  when = durations.resolve(make_config(**{'num_steps': 7, 'eval_every_epochs': 2,
                                          'eval_every_steps': 5, 'log_every_steps': 4}), 3)
  assert when.num_epochs == 3  # the third partial
  assert [s for s in range(1, 8) if when.eval_now(s)] == [5, 6, 7]  # step 5, epoch 2, the end
  assert [s for s in range(1, 8) if when.log_now(s)] == [3, 4, 6, 7]
  assert [s for s in range(1, 8) if when.checkpoint_now(s)] == [3, 6, 7]


@pytest.mark.parametrize('overrides, field', [
    ({'num_steps': 5, 'num_examples': 100}, 'num_examples'),
    ({'num_steps': -1}, 'num_steps'),
    ({'num_epochs': 0}, 'num_epochs'),
    ({'eval_every_epochs': 0}, 'eval_every_epochs'),
    ({'eval_every_steps': -2}, 'eval_every_steps'),
])
def test_bad_durations_are_user_errors(make_config, overrides, field):
  with pytest.raises(UserError, match=field):
    durations.resolve(make_config(**overrides), steps_per_epoch=3)


def test_a_run_of_num_steps_ends_mid_epoch(tmp_path, make_config):
  config = make_config(**{'num_steps': 4, 'eval_every_steps': 2, 'model.name': 'resnet8',
                          'optim.schedule': 'cosine'})
  result = train_and_evaluate(config, str(tmp_path))
  assert result['step'] == 4
  records = [json.loads(line) for line in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert [r['step'] for r in records if 'test_loss' in r] == [2, 3, 4]
  assert [r['step'] for r in records if 'loss' in r] == [1, 2, 3, 4]
  # The cosine spans the 4 steps: step 4 trains at lr(3) = 0.1 (1 + cos(3 pi / 4)) / 2.
  last_lr = [r['learning_rate'] for r in records if 'loss' in r][-1]
  assert last_lr == pytest.approx(0.1 * (1 + math.cos(3 * math.pi / 4)) / 2, rel=1e-5)
  ckpt = Checkpointer(str(tmp_path), keep=3, read_only=True)
  assert ckpt.steps()[-1] == 4
  ckpt.close()
