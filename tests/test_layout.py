"""Block layouts (model.scan_blocks, model.remat_blocks): chosen by depth, the same function in
every layout, and checkpoints that move between layouts."""

import functools

import jax
import ml_collections
import numpy as np
import optax
import pytest

from configs import default
from resnet_flax.checkpoints import relayout
from resnet_flax.cpu import runtime
from resnet_flax.errors import UserError
from resnet_flax.models import create_model, scan_layout
from resnet_flax.training import build, layout


def model_config(name, **fields):
  cfg = default.get_config().model
  cfg.name = name
  cfg.update(fields)
  return cfg


@pytest.mark.parametrize('name,scan', [
    ('resnet20', False), ('resnet110', False), ('preact_resnet164', False), ('resnet152', False),
    ('resnet1202', True), ('preact_resnet1001', True)])
def test_auto_scans_only_the_nets_too_deep_to_compile_unrolled(name, scan):
  chosen = layout.block_layout(model_config(name))
  assert chosen.fields() == (scan, 'convs' if scan else 'off')  # remat 'auto': deep nets only
  assert ('scanned stages' if scan else 'unrolled blocks') in chosen.why and 'auto' in chosen.why


def test_explicit_choices_override_auto_and_saved_booleans_still_read():
  chosen = lambda name, **fields: layout.block_layout(model_config(name, **fields)).fields()
  assert chosen('resnet20', scan_blocks='on') == (True, 'off')  # shallow: activations kept
  assert chosen('resnet1202', scan_blocks='off') == (False, 'convs')  # deep: recomputed
  assert chosen('resnet1202', remat_blocks='off') == (True, 'off')
  assert chosen('resnet20', remat_blocks='on') == (False, 'on')
  assert chosen('resnet1202', remat_blocks='on') == (True, 'on')
  assert chosen('resnet20', remat_blocks='convs') == (False, 'convs')
  saved = ml_collections.ConfigDict({'name': 'resnet1202', 'scan_blocks': False,  # before 'auto'
                                     'remat_blocks': True})
  assert layout.block_layout(saved).fields() == (False, 'on')
  with pytest.raises(UserError, match="--config.model.scan_blocks='yes'"):
    layout.block_layout(model_config('resnet20', scan_blocks='yes'))
  with pytest.raises(UserError, match="--config.model.remat_blocks='some'.*auto, off, convs, on"):
    layout.block_layout(model_config('resnet20', remat_blocks='some'))


def test_the_start_up_line_says_the_layout_and_why():
  why = runtime.model_parts(model_config('resnet1202')).why
  assert 'scanned stages (auto: 600 blocks > 64' in why
  assert ('conv outputs kept, BN and ReLU recomputed in the backward pass (auto: 600 blocks > 64)'
          in why)


def _step_outputs(cfg, images, labels):
  """Loss, gradients and updated BN statistics of one train-mode step, in the unrolled layout."""
  model = build.create_model(cfg, 10, parts=runtime.model_parts(cfg))
  plain = create_model(cfg.name, num_classes=10)
  variables = plain.init(jax.random.key(0), images[:1], train=False)
  sizes = plain.stage_sizes
  if model.scan_blocks:
    variables = scan_layout.to_scanned(variables, sizes)

  def loss_fn(params):
    logits, state = model.apply({**variables, 'params': params}, images, train=True,
                                mutable=['batch_stats'])
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, state['batch_stats']

  (loss, stats), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(variables['params'])
  back = scan_layout.to_unscanned({'batch_stats': stats, 'params': grads}, sizes)
  return loss, back['batch_stats'], back['params']


LAYOUTS = [('off', 'on'), ('off', 'convs'), ('on', 'off'), ('on', 'on'),  # (scan_blocks,
           ('on', 'convs')]                                                    # remat_blocks)


@functools.cache
def _plain_outputs(conv_backend):
  return _step_outputs(model_config('resnet20', scan_blocks='off', remat_blocks='off',
                                    conv_backend=conv_backend), *_batch())


def _batch():
  rng = np.random.default_rng(0)
  return rng.standard_normal((2, 16, 16, 3), np.float32), np.array([1, 7])


@pytest.mark.parametrize('conv_backend,scan,remat', [
    pytest.param(backend, scan, remat, marks=() if (backend, scan, remat) == ('onednn', 'on', 'convs')
                 else pytest.mark.slow) for backend in ('onednn', 'xla') for scan, remat in LAYOUTS])
def test_every_layout_computes_the_same_loss_gradients_and_statistics(conv_backend, scan, remat):
  # Equal to float32 rounding, not bit for bit: remat and the scan body run the block's ops in
  # order, but XLA fuses them (and the loss's reductions) differently around a loop or a
  # rematerialised region, so a sum may round differently (here: often identical, the loss at
  # worst one ulp apart). A wrong recomputation (e.g. of BN's batch statistics) is far outside.
  expected = _plain_outputs(conv_backend)
  actual = _step_outputs(model_config('resnet20', scan_blocks=scan, remat_blocks=remat,
                                      conv_backend=conv_backend), *_batch())
  assert jax.tree.structure(actual) == jax.tree.structure(expected)
  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6), actual, expected)


def _compiled_step(remat):
  """The compiled gradient step of a scanned ResNet-20 (XLA's convs) with `remat`."""
  cfg = model_config('resnet20', scan_blocks='on', remat_blocks=remat, conv_backend='xla')
  model = build.create_model(cfg, 10, parts=runtime.model_parts(cfg))
  images, labels = np.zeros((8, 16, 16, 3), np.float32), np.zeros(8, np.int32)
  variables = jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0), images)

  def loss_fn(params, batch_stats):
    logits, _ = model.apply({'params': params, 'batch_stats': batch_stats}, images, train=True,
                            mutable=['batch_stats'])
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

  return jax.jit(jax.grad(loss_fn)).lower(variables['params'], variables['batch_stats']).compile()


@pytest.mark.slow
def test_recomputing_bn_and_relu_runs_no_conv_twice_and_keeps_less():
  """remat 'convs' keeps the convs' outputs: as many convolutions as 'off', fewer than 'on'
  (which runs each block's forward again), and less kept for the backward pass than 'off'."""
  steps = {remat: _compiled_step(remat) for remat in ('off', 'convs', 'on')}
  convs = {remat: step.as_text().count(' convolution(') for remat, step in steps.items()}
  assert convs['convs'] == convs['off'] < convs['on'], convs
  temp = {remat: step.memory_analysis().temp_size_in_bytes for remat, step in steps.items()}
  assert temp['on'] < temp['convs'] < temp['off'], temp


def test_optimizer_state_converts_between_layouts_exactly():
  model = create_model('resnet20', num_classes=10)
  params = jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0),
                          np.zeros((1, 32, 32, 3), np.float32))['params']
  params = jax.tree.map(lambda x: np.random.default_rng(0).standard_normal(x.shape, np.float32),
                        params)
  tx = optax.sgd(0.1, momentum=0.9)
  state = {'params': params, 'opt_state': tx.init(params), 'step': np.int32(3)}
  scanned = relayout.convert(state, (3, 3, 3), scanned=True)
  assert 'stage2_blocks' in scanned['params'] and 'stage2_block2' not in scanned['params']
  assert scanned['opt_state'][0].trace['stage2_blocks']['conv1']['kernel'].shape[0] == 2
  back = relayout.convert(scanned, (3, 3, 3), scanned=False)
  assert jax.tree.structure(back) == jax.tree.structure(state)
  jax.tree.map(np.testing.assert_array_equal, back, state)
  assert jax.tree.structure(relayout.convert(scanned, (3, 3, 3), scanned=True)) == \
      jax.tree.structure(scanned)  # converting to the layout it has changes nothing


@pytest.mark.slow
def test_a_run_resumes_in_the_other_layout(tmp_path):
  """Unrolled for 6 steps, then resumed scanned (the checkpoint converted on restore) for 6
  more: the same run as 12 unrolled steps, to float32 rounding (the layouts round differently)."""
  import json
  import os
  import subprocess
  import sys
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  flags = ['--config', 'configs/default.py', '--config.model.name=resnet20',
           '--config.parallel.cpu_devices=1', '--config.data.dataset=synthetic',
           '--config.data.synthetic.num_train=96', '--config.data.synthetic.num_test=16',
           '--config.batch_size=16', '--config.optim.schedule=constant',
           '--config.log_every_steps=1', '--config.progress_bar=False']

  def train(workdir, epochs, scan):
    out = subprocess.run([sys.executable, 'train.py', '--workdir', str(workdir), *flags,
                          f'--config.num_epochs={epochs}', f'--config.model.scan_blocks={scan}'],
                         cwd=root, capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout

  train(tmp_path / 'a', 2, 'off')
  train(tmp_path / 'b', 1, 'off')
  log = train(tmp_path / 'b', 2, 'on')
  assert 'Resumed from' in log and 'scanned stages (model.scan_blocks)' in log

  def losses(workdir):
    with open(workdir / 'metrics.jsonl') as f:
      return [r['loss'] for r in map(json.loads, f) if 'accuracy' in r]  # train records
  a, b = losses(tmp_path / 'a'), losses(tmp_path / 'b')
  assert len(a) == len(b) == 12
  np.testing.assert_allclose(b, a, rtol=1e-4)
