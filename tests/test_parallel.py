"""Scale-out: jit and pmap on 4 fake CPU devices, per-device BN, two processes, the step's options.

The multi-device runs happen in subprocesses (tests/multidevice_worker.py): the device count
is fixed when jax starts, and this process has one device.
"""

import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from resnet_flax.training import build, evaluation, parallel, steps

from resnet_flax import train_and_evaluate
from resnet_flax.checkpoints.checkpointing import Checkpointer
from resnet_flax.errors import UserError
from resnet_flax.reporting.metrics_log import read_records
from resnet_flax.cpu import devices as cpu_devices, onednn
from tests.conftest import small_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_worker(*args: str, devices: int) -> subprocess.Popen:
  env = dict(os.environ, XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}')
  return subprocess.Popen([sys.executable, os.path.join(ROOT, 'tests', 'multidevice_worker.py'),
                           *args], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def result_of(proc: subprocess.Popen, timeout: float = 600) -> dict:
  out, _ = proc.communicate(timeout=timeout)
  lines = [line for line in out.splitlines() if line.startswith('RESULT ')]
  assert proc.returncode == 0 and lines, out[-3000:]
  return json.loads(lines[-1][len('RESULT '):])


def train_losses(workdir) -> list[float]:
  return [r['loss'] for r in read_records(os.path.join(workdir, 'metrics.jsonl')) if 'loss' in r]


def one_device_run(workdir, on_device: str) -> list[float]:
  """The reference: the same config on this process's single device."""
  assert jax.device_count() == 1
  train_and_evaluate(small_config(**{'model.name': 'resnet8', 'data.on_device': on_device}),
                     str(workdir))
  return train_losses(workdir)


@pytest.fixture(scope='module')
def one_device_losses(tmp_path_factory):
  return one_device_run(tmp_path_factory.mktemp('one_device'), 'auto')


@pytest.fixture(scope='module')
def four_devices(tmp_path_factory):
  """Everything measured on 4 fake devices, from one subprocess (one slow start-up for all)."""
  return result_of(run_worker('four_devices', str(tmp_path_factory.mktemp('four')), devices=4))


@pytest.mark.slow
def test_jit_and_pmap_on_four_devices_match_one_device(four_devices, one_device_losses):
  runs = four_devices['modes']
  assert len(one_device_losses) == 6
  for mode in ('jit-global', 'pmap-global'):
    np.testing.assert_allclose(runs[mode]['losses'], one_device_losses, rtol=1e-5, err_msg=mode)
  # Per-device BN is one computation whichever way it is compiled ...
  np.testing.assert_allclose(runs['jit-per_device']['losses'], runs['pmap-per_device']['losses'],
                             rtol=1e-5)
  np.testing.assert_allclose(runs['jit-per_device']['test_loss'],
                             runs['pmap-per_device']['test_loss'], rtol=1e-5)
  # ... and a different one from global BN (8 images per device instead of 32). (Every run here
  # builds its batches on the device: 'auto' places this small set.)
  assert abs(runs['jit-per_device']['losses'][1] - runs['jit-global']['losses'][1]) > 1e-3


@pytest.mark.slow
def test_per_device_bn_step_matches_a_per_shard_reference(four_devices):
  diffs = four_devices['ghost_bn']
  assert diffs['loss'] < 1e-6
  assert diffs['params'] < 1e-5
  assert diffs['batch_stats'] < 1e-6  # the running statistics averaged over the 4 devices
  assert diffs['global_vs_ghost_stats'] > 1e-3  # the reference is not trivially global BN


@pytest.mark.slow
def test_every_test_image_counts_once_on_1_2_and_4_devices(four_devices):
  """Padded, masked, sharded evaluation: the same sums whatever the batch size and device count."""
  totals = {n: result_of(run_worker('eval_totals', devices=n)) for n in (1, 2)}
  totals[4] = four_devices['eval_totals']
  for n, by_batch in totals.items():
    for batch_size, t in by_batch.items():
      assert t['count'] == 40, (n, batch_size)
      reference = totals[1]['4']
      assert t['correct'] == reference['correct'] and t['correct_top5'] == reference['correct_top5']
      assert t['loss'] == pytest.approx(reference['loss'], rel=1e-5), (n, batch_size)


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def run_two_processes(workdir, mode: str, on_device: str) -> list[dict]:
  address = f'127.0.0.1:{free_port()}'
  procs = [run_worker('process', str(workdir), address, '2', str(i), mode, on_device, devices=2)
           for i in range(2)]
  return [result_of(p) for p in procs]


@pytest.mark.parametrize('mode, on_device', [
    ('jit', 'off'),  # each process's tf.data pipeline yields its slice of every global batch
    pytest.param('pmap', 'on', marks=pytest.mark.slow),  # each device builds its own slice
])
@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path_factory, mode, on_device):
  tmp_path = tmp_path_factory.mktemp('two_processes')
  one_device_losses = one_device_run(tmp_path_factory.mktemp('one_device'), on_device)
  results = run_two_processes(tmp_path, mode, on_device)
  assert [r['process_index'] for r in results] == [0, 1]
  assert all(r['devices'] == 4 and r['local_devices'] == 2 for r in results)
  assert results[0]['test_loss'] == results[1]['test_loss']
  # Process 0 alone logs: every step once, equal to one process on the same global batches.
  np.testing.assert_allclose(train_losses(tmp_path), one_device_losses, rtol=1e-5)
  assert json.loads((tmp_path / 'results.json').read_text())['step'] == 6
  ckpt = Checkpointer(str(tmp_path), keep=1, read_only=True)
  assert ckpt.steps() == [3, 6]
  ckpt.close()


@pytest.mark.slow
def test_sigterm_to_one_of_two_processes_saves_the_same_step_on_both(tmp_path):
  """They agree every preemption_check_every_steps steps, with no collective in between."""
  overrides = json.dumps({'num_epochs': 20, 'optim.schedule': 'constant',
                          'parallel.preemption_check_every_steps': 4})
  address = f'127.0.0.1:{free_port()}'
  procs = [run_worker('process', str(tmp_path), address, '2', str(i), 'jit', 'off', overrides,
                      devices=2) for i in range(2)]
  deadline = time.monotonic() + 300
  log = tmp_path / 'metrics.jsonl'
  while not (log.exists() and any(r['step'] >= 2 for r in read_records(str(log)))):
    assert time.monotonic() < deadline and procs[1].poll() is None
    time.sleep(0.05)
  procs[1].send_signal(signal.SIGTERM)
  results = [result_of(p) for p in procs]  # both exit 0
  assert all(r['preempted'] for r in results)
  saved = results[0]['step']
  assert results[1]['step'] == saved and saved % 4 == 0 and saved < 60, results
  assert Checkpointer(str(tmp_path), keep=1, read_only=True).latest_step() == saved
  address = f'127.0.0.1:{free_port()}'
  rerun = [run_worker('process', str(tmp_path), address, '2', str(i), 'jit', 'off', overrides,
                      devices=2) for i in range(2)]
  assert all('test_loss' in result_of(p) for p in rerun)
  steps_logged = [r['step'] for r in read_records(str(log)) if 'loss' in r]
  assert steps_logged == list(range(1, 61))  # resumed after `saved`: every step logged once


def test_multi_host_start_after_jax_started_is_a_user_error(make_config):
  jax.devices()  # this process's backend is up
  cfg = make_config(**{'parallel.coordinator_address': '127.0.0.1:1',
                       'parallel.num_processes': 2, 'parallel.process_id': 0})
  with pytest.raises(UserError, match='coordinator_address'):
    parallel.initialize_distributed(cfg.parallel)


def test_unknown_parallel_settings_are_user_errors(tmp_path, make_config):
  with pytest.raises(UserError, match="parallel.batch_norm='ghost'"):
    train_and_evaluate(make_config(**{'parallel.batch_norm': 'ghost'}), str(tmp_path))


def tiny_step_setup(**overrides):
  """A ResNet-8 state on 8x8 inputs and one fixed batch: quick to compile."""
  config = small_config(**{'optim.schedule': 'constant', 'model.name': 'resnet8', **overrides})
  model = build.create_model(config.model, 10)
  state, schedule, rng = build.create_state(config, model, (8, 8, 3), steps_per_epoch=3)
  data = np.random.default_rng(0)
  batch = {'image': data.normal(size=(32, 8, 8, 3)).astype(np.float32),
           'label': data.integers(0, 10, size=32).astype(np.int32)}
  return config, model, state, schedule, rng, batch


CPU_DEVICES_PROBE = '''
import json, sys
import jax
from configs import default
from resnet_flax.training import config_help
from resnet_flax.cpu import devices
config = config_help.set_fields(default.get_config(), json.loads(sys.argv[1]))
said = devices.configure(config)
print('RESULT ' + json.dumps({'said': said, 'devices': jax.device_count()}))
'''


XLA_CONVS = {'model.conv_backend': 'xla'}


@pytest.mark.parametrize('overrides,xla_flags,devices,says', [
    ({}, '', 1, 'oneDNN'),  # the default config: oneDNN's convs use every core from one device
    (XLA_CONVS, '', 4, 'auto'),  # XLA's convs: 4 devices share the batch
    ({**XLA_CONVS, 'batch_size': 6, 'eval_batch_size': 10}, '', 2, 'auto'),  # 4 does not divide 6
    ({**XLA_CONVS, 'batch_size': 7}, '', 1, 'no count'),
    # bfloat16: oneDNN's kernels where the CPU computes bf16 (one device), else XLA's (four)
    ({'model.dtype': 'bfloat16'}, '', *((1, 'oneDNN') if onednn.native_bfloat16() else (4, 'auto'))),
    ({'parallel.batch_norm': 'per_device'}, '', 1, 'per-device BatchNorm'),  # changes the model
    ({}, '--xla_force_host_platform_device_count=2', 2, 'XLA_FLAGS'),  # the user's choice stands
    ({'parallel.cpu_devices': 3, 'batch_size': 6}, '', 3, 'cpu_devices=3'),
])
def test_cpu_devices_default_splits_the_cpu_unless_that_would_change_the_run(
    overrides, xla_flags, devices, says):
  env = {k: v for k, v in os.environ.items() if k not in ('XLA_FLAGS', 'JAX_NUM_CPU_DEVICES')}
  proc = subprocess.Popen([sys.executable, '-c', CPU_DEVICES_PROBE, json.dumps(overrides)],
                          env={**env, 'XLA_FLAGS': xla_flags, 'JAX_PLATFORMS': 'cpu'}, cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  result = result_of(proc, timeout=120)
  assert result['devices'] == devices and says in result['said'], result


def test_cpu_devices_after_jax_started_is_a_user_error_unless_it_matches(make_config):
  assert jax.device_count() == 1  # conftest: this process has started with one CPU device
  with pytest.raises(UserError, match='already started with 1 CPU device'):
    cpu_devices.configure(make_config(**{'parallel.cpu_devices': 2}))
  one = make_config(**{'parallel.cpu_devices': 1})
  assert 'cpu_devices=1' in cpu_devices.configure(one)
  assert 'already chosen' in cpu_devices.configure(make_config())  # conftest's choice
  with pytest.raises(UserError, match='cpu_devices=-1'):
    cpu_devices.configure(make_config(**{'parallel.cpu_devices': -1}))


@pytest.mark.slow
def test_transfer_guard_refuses_implicit_copies_in_the_step():
  config, _, state, schedule, rng, batch = tiny_step_setup()
  step = functools.partial(steps.train_step, schedule=schedule)
  runner = parallel.DataParallel(config.parallel, parallel.data_mesh(), step)
  with pytest.raises(Exception, match='Disallowed host-to-device transfer'):
    runner.step(state, batch, runner.put_rng(rng))  # a numpy batch: an implicit copy
  state, metrics = runner.step(state, runner.put_batch(batch), runner.put_rng(rng))
  assert np.isfinite(parallel.fetch_metrics([metrics])[0]['loss'])


@pytest.mark.slow
def test_non_finite_loss_stops_at_its_step_and_keeps_the_last_good_checkpoint(tmp_path,
                                                                            make_config):
  cfg = make_config(**{'optim.learning_rate': 1e12, 'optim.schedule': 'constant',
                       'checkpoint_every_steps': 1, 'log_every_steps': 100,
                       'model.name': 'resnet8'})
  with pytest.raises(UserError, match=r'at step \d+') as error:
    train_and_evaluate(cfg, str(tmp_path))
  bad_step = int(re.search(r'at step (\d+)', str(error.value)).group(1))
  assert bad_step >= 2
  ckpt = Checkpointer(str(tmp_path), keep=3, read_only=True)
  assert max(ckpt.steps()) == bad_step - 1
  ckpt.close()


def test_ema_follows_its_formula_and_is_what_evaluation_uses():
  decay = 0.5
  _, _, state, schedule, rng, batch = tiny_step_setup(**{'optim.ema_decay': decay})
  step = jax.jit(functools.partial(steps.train_step, schedule=schedule, ema_decay=decay))
  p0 = state.params
  state1, _ = step(state, batch, rng)
  state2, _ = step(state1, batch, rng)
  expected = jax.tree.map(lambda a, b, c: decay * (decay * a + (1 - decay) * b) + (1 - decay) * c,
                          p0, state1.params, state2.params)
  for got, want in zip(jax.tree.leaves(state2.ema['params']), jax.tree.leaves(expected)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
  stats = jax.tree.map(lambda a, b: decay * a + (1 - decay) * b,
                       state1.ema['batch_stats'], state2.batch_stats)
  for got, want in zip(jax.tree.leaves(state2.ema['batch_stats']), jax.tree.leaves(stats)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
  assert evaluation.eval_variables(state2) is state2.ema


@pytest.mark.slow
def test_sam_takes_the_gradient_at_the_ascended_point():
  rho, lr = 0.05, 0.1
  overrides = {'optim.sam_rho': rho, 'optim.momentum': 0.0, 'optim.weight_decay': 0.0,
               'optim.learning_rate': lr}
  _, model, state, schedule, rng, batch = tiny_step_setup(**overrides)
  new, _ = jax.jit(functools.partial(steps.train_step, schedule=schedule, sam='global'))(
      state, batch, rng)

  def loss(params):
    logits, _ = model.apply({'params': params, 'batch_stats': state.batch_stats},
                            batch['image'], train=True, mutable=['batch_stats'])
    return steps.cross_entropy(logits, batch['label']).mean()

  grad = jax.jit(jax.grad(loss))
  g = grad(state.params)
  norm = optax.tree.norm(g)
  g_adv = grad(jax.tree.map(lambda p, d: p + rho * d / norm, state.params, g))
  want = jax.tree.map(lambda p, d: p - lr * d, state.params, g_adv)
  for got, expected in zip(jax.tree.leaves(new.params), jax.tree.leaves(want)):
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
  plain = jax.tree.map(lambda p, d: p - lr * d, state.params, g)
  assert max(float(jnp.max(jnp.abs(a - b))) for a, b in
             zip(jax.tree.leaves(new.params), jax.tree.leaves(plain))) > 1e-6


OPTIMIZER_CONFIGS = [
    {'optim.optimizer': 'sgd', 'optim.nesterov': True},
    {'optim.optimizer': 'sgd', 'optim.weight_decay_mode': 'decoupled'},
    {'optim.optimizer': 'adam', 'optim.learning_rate': 1e-3},
    {'optim.optimizer': 'adamw', 'optim.weight_decay_mode': 'decoupled',
     'optim.learning_rate': 1e-3},
    {'optim.optimizer': 'lars', 'optim.learning_rate': 0.5, 'optim.decay_bn_and_bias': False},
    {'optim.sam_rho': 0.05, 'optim.clip_grad_norm': 1.0, 'optim.ema_decay': 0.9},
    {'optim.schedule': 'step', 'optim.milestones': (1, 2), 'optim.milestones_unit': 'steps'},
    {'optim.schedule': 'exponential', 'optim.warmup_epochs': 0.5},
    {'optim.schedule': 'cosine', 'optim.warmup_epochs': 0.5, 'optim.lr_scaling': 'linear'},
    {'optim.schedule': 'onecycle'},
    {'optim.schedule': 'he2016', 'optim.he_milestones_steps': (2, 3), 'optim.he_warmup_steps': 1},
]


def _name(overrides: dict) -> str:
  return ','.join(f'{k.split(".")[-1]}={v}' for k, v in overrides.items())


@pytest.mark.slow
@pytest.mark.parametrize('overrides', OPTIMIZER_CONFIGS, ids=_name)
def test_every_optimizer_and_schedule_lowers_the_loss_on_a_fixed_batch(overrides):
  config, _, state, schedule, rng, batch = tiny_step_setup(
      **{'optim.schedule': 'cosine', **overrides})
  step = jax.jit(functools.partial(steps.train_step, schedule=schedule,
                                   sam=parallel.sam_mode(config),
                                   ema_decay=config.optim.ema_decay))
  losses = []
  for _ in range(4):
    state, metrics = step(state, batch, rng)
    losses.append(float(metrics['loss']))
  assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
