"""Models: exact parameter counts, shapes, BatchNorm behaviour, registry errors."""

import flax.linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from resnet_flax.errors import UserError
from resnet_flax.models import create_model, list_models, summarize
from resnet_flax.models import parts
from resnet_flax.models.layers import RecomputedBatchNorm, UnfusedBatchNorm, conv, relu

# docs/reference.md: learnable params (BN scale/bias included).
PARAM_COUNTS = [
    ('resnet20', 10, 269_722), ('resnet20', 100, 275_572), ('resnet20_b', 10, 272_474),
    ('resnet32', 10, 464_154), ('resnet32', 100, 470_004),
    ('resnet44', 10, 658_586), ('resnet44', 100, 664_436),
    ('resnet56', 10, 853_018), ('resnet56', 100, 858_868),
    ('resnet110', 10, 1_727_962), ('resnet110', 100, 1_733_812),
    ('resnet1202', 10, 19_421_274), ('resnet1202', 100, 19_427_124),
]


def abstract_variables(model, shape=(1, 32, 32, 3)):
  return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape), train=False))


def count(tree):
  return sum(x.size for x in jax.tree.leaves(tree))


@pytest.mark.parametrize('name,classes,expected', PARAM_COUNTS)
def test_param_count_matches_published(name, classes, expected):
  variables = abstract_variables(create_model(name, num_classes=classes))
  assert count(variables['params']) == expected


@pytest.mark.slow
def test_forward_shapes_and_dtypes():
  model = create_model('resnet20', num_classes=10)
  x = jnp.ones((2, 32, 32, 3))
  variables = model.init(jax.random.key(0), x, train=False)
  logits = model.apply(variables, x, train=False)
  assert logits.shape == (2, 10) and logits.dtype == jnp.float32
  bf16 = create_model('resnet20', num_classes=10, dtype=jnp.bfloat16)
  assert bf16.apply(variables, x, train=False).dtype == jnp.float32
  assert set(variables) == {'params', 'batch_stats'}


def test_stage_resolution_and_width():
  """Stage outputs are 32x32x16, 16x16x32, 8x8x64 (He et al. section 4.2)."""
  model = create_model('resnet20', num_classes=10)
  x = jnp.ones((1, 32, 32, 3))
  variables = model.init(jax.random.key(0), x, train=False)
  _, state = model.apply(variables, x, train=False, capture_intermediates=True, mutable=True)
  shapes = {k: v['__call__'][0].shape for k, v in state['intermediates'].items()
            if k.endswith('block3')}
  assert shapes == {'stage1_block3': (1, 32, 32, 16), 'stage2_block3': (1, 16, 16, 32),
                    'stage3_block3': (1, 8, 8, 64)}


def test_batch_stats_update_in_train_mode_only():
  model = create_model('resnet20', num_classes=10)
  x = jax.random.normal(jax.random.key(1), (8, 32, 32, 3)) * 3 + 1
  variables = model.init(jax.random.key(0), x, train=False)
  _, updates = model.apply(variables, x, train=True, mutable=['batch_stats'])
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), variables['batch_stats'],
                         updates['batch_stats'])
  assert all(jax.tree.leaves(changed))
  _, frozen = model.apply(variables, x, train=False, mutable=['batch_stats'])
  jax.tree.map(np.testing.assert_array_equal, variables['batch_stats'], frozen['batch_stats'])


def _train_step_outputs(model, x, synced=False):
  """Loss, new BN statistics and gradients of one train step; `synced`: x is (shards, batch, ...)
  and BN averages its statistics over the shards (vmap with the model's bn_axis_name)."""
  variables = model.init(jax.random.key(0), x[0] if synced else x, train=False)

  def loss(params, images):
    logits, state = model.apply({**variables, 'params': params}, images, train=True,
                                mutable=['batch_stats'])
    return jnp.mean(jax.nn.log_softmax(logits)[:, 0]), state['batch_stats']
  step = jax.value_and_grad(loss, has_aux=True)
  if synced:
    step = jax.vmap(step, in_axes=(None, 0), axis_name='shards')
  return variables, jax.jit(step)(variables['params'], x)


@pytest.mark.parametrize('layout', ['unrolled', pytest.param('scanned', marks=pytest.mark.slow),
                                    pytest.param('synced', marks=pytest.mark.slow)])
def test_recomputed_batch_norm_computes_the_same_step(layout):
  """RecomputedBatchNorm (models/batch_norm.py): same variables, loss, gradients and running
  statistics as nn.BatchNorm, unrolled, scanned and with BN statistics synced over shards."""
  shape = (2, 4, 16, 16, 3) if layout == 'synced' else (8, 16, 16, 3)
  x = jax.random.normal(jax.random.key(1), shape) * 2 + 0.5
  plain, recomputed = (
      _train_step_outputs(create_model('resnet20', num_classes=10,
                                       **parts.plain(layout == 'scanned', flag).fields(),
                                       scan_blocks=layout == 'scanned',
                                       bn_axis_name='shards' if layout == 'synced' else None),
                          x, synced=layout == 'synced') for flag in (False, True))
  assert jax.tree.structure(plain[0]) == jax.tree.structure(recomputed[0])
  (loss, stats), grads = plain[1]
  (loss_r, stats_r), grads_r = recomputed[1]
  np.testing.assert_allclose(loss_r, loss, rtol=1e-6)
  for a, b in zip(jax.tree.leaves((grads_r, stats_r)), jax.tree.leaves((grads, stats))):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
  first = (lambda t: jax.tree.map(lambda a: a[0], t)) if layout == 'synced' else (lambda t: t)
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), recomputed[0]['batch_stats'],
                         first(stats_r))
  assert all(jax.tree.leaves(changed))


def test_batch_norm_matches_flax_with_gradients_through_its_statistics():
  """models/batch_norm.BatchNorm vs nn.BatchNorm on a loss that also reads the new running
  statistics (their cotangents flow through the custom VJP too); eval mode bit for bit."""
  from resnet_flax.models.batch_norm import BatchNorm
  x = jax.random.normal(jax.random.key(0), (8, 4, 4, 16)) * 2 + 1
  g = jax.random.normal(jax.random.key(1), (8, 4, 4, 16))
  results = []
  for module in (nn.BatchNorm, BatchNorm):
    bn = module(use_running_average=False, momentum=0.9)
    variables = bn.init(jax.random.key(0), x)

    def loss(params, x, bn=bn, variables=variables):
      y, state = bn.apply({**variables, 'params': params}, x, mutable=['batch_stats'])
      stats = state['batch_stats']
      return jnp.sum(relu(y) * g) + jnp.sum(3 * stats['var'] + 2 * stats['mean']), state
    (value, state), grads = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
        variables['params'], x)
    evaluated = module(use_running_average=True).apply(
        {'params': variables['params'], **state}, x)
    results.append((value, state, grads, evaluated))
  for a, b in zip(jax.tree.leaves(results[0][:3]), jax.tree.leaves(results[1][:3])):
    np.testing.assert_allclose(b, a, rtol=2e-5, atol=1e-6)
  np.testing.assert_array_equal(results[1][3], results[0][3])


def test_batch_norm_is_recomputed_by_default_on_cpu_only(monkeypatch):
  """The cpu runtime's choice: recomputed on CPU with either conv backend and dtype, where it was
  measured faster; flax's elsewhere, and in the plain parts, unless the config says 'on'."""
  from resnet_flax.training import build
  from resnet_flax.cpu import runtime
  from tests.conftest import small_config
  x = jnp.zeros((2, 16, 16, 3))

  def recomputed(plain=False, **fields):
    cfg = small_config(**{f'model.{k}': v for k, v in fields.items()}).model
    model = build.create_model(cfg, 10, parts=None if plain else runtime.model_parts(cfg))
    variables = model.init(jax.random.key(0), x, train=False)
    jaxpr = jax.make_jaxpr(lambda p: model.apply(
        {**variables, 'params': p}, x, train=True, mutable=['batch_stats'])[0])(
            variables['params'])
    return str(jaxpr).count('batch_norm_train')  # models/batch_norm.py's custom_vjp
  assert recomputed(conv_backend='onednn') > 0
  assert recomputed(dtype='bfloat16') > 0  # oneDNN's or XLA's convs, as this CPU allows
  assert recomputed(conv_backend='xla') > 0
  assert recomputed(conv_backend='xla', scan_blocks='on') > 0
  assert recomputed(conv_backend='onednn', recompute_bn='off') == 0
  assert recomputed(plain=True) == 0 and recomputed(plain=True, recompute_bn='on') > 0
  monkeypatch.setattr(jax, 'default_backend', lambda: 'gpu')
  assert recomputed(conv_backend='xla') == 0
  assert recomputed(conv_backend='xla', recompute_bn='on') > 0


def test_config_recompute_bn_sets_the_models_norm():
  """`--config.model.recompute_bn` reaches the model; a wrong value says what it accepts."""
  from configs import default
  from resnet_flax.training import build
  from resnet_flax.cpu import runtime
  config = default.get_config().model
  config.conv_backend = 'xla'
  for running_var, unfused in (('biased', nn.BatchNorm), ('unbiased', UnfusedBatchNorm)):
    config.bn_running_var = running_var  # flax's BatchNorm has no unbiased running variance
    for value, on_cpu in (('auto', RecomputedBatchNorm), ('on', RecomputedBatchNorm),
                          ('off', unfused)):
      config.recompute_bn = value
      assert build.create_model(config, 10, parts=runtime.model_parts(config)).norm is on_cpu
      plain = RecomputedBatchNorm if value == 'on' else unfused
      assert build.create_model(config, 10).norm is plain
  config.recompute_bn = 'yes'
  for parts_of in (lambda cfg: None, runtime.model_parts):
    with pytest.raises(UserError, match="recompute_bn='yes'.*'auto'"):
      build.create_model(config, 10, parts=parts_of(config))


def test_eval_output_is_independent_of_the_rest_of_the_batch():
  """Eval mode uses running statistics: an image's logits do not depend on its batch mates."""
  model = create_model('resnet20', num_classes=10)
  x = jax.random.normal(jax.random.key(1), (4, 32, 32, 3))
  variables = model.init(jax.random.key(0), x, train=False)
  full = model.apply(variables, x, train=False)
  single = model.apply(variables, x[:1], train=False)
  np.testing.assert_allclose(full[:1], single, rtol=1e-5, atol=1e-6)


def test_stride2_conv_pads_symmetrically_like_pytorch():
  """A 3x3 stride-2 conv on 4x4 input samples centres at rows/cols 0 and 2 (PyTorch padding=1)."""
  layer = conv(1, 3, strides=2)
  x = jnp.arange(16.0).reshape(1, 4, 4, 1)
  kernel = jnp.zeros((3, 3, 1, 1)).at[1, 1, 0, 0].set(1.0)  # picks the centre pixel
  y = layer.apply({'params': {'kernel': kernel}}, x)
  np.testing.assert_array_equal(y[0, :, :, 0], x[0, ::2, ::2, 0])


def test_option_a_shortcut_pads_channels_equally():
  from resnet_flax.models.resnet import ShortcutA
  x = jnp.arange(2 * 4 * 4 * 16, dtype=jnp.float32).reshape(2, 4, 4, 16)
  y = ShortcutA(32, 2, norm=None).apply({}, x)
  assert y.shape == (2, 2, 2, 32)
  np.testing.assert_array_equal(y[..., 8:24], x[:, ::2, ::2, :])
  assert not jnp.any(y[..., :8]) and not jnp.any(y[..., 24:])


def test_relu_matches_nn_relu_in_value_and_gradient():
  x = jnp.array([-2.0, -0.0, 0.0, 1e-30, 3.0])
  np.testing.assert_array_equal(relu(x), nn.relu(x))
  grad = jax.grad(lambda v: jnp.sum(relu(v) * jnp.arange(5.0)))(x)
  ref = jax.grad(lambda v: jnp.sum(nn.relu(v) * jnp.arange(5.0)))(x)
  np.testing.assert_array_equal(grad, ref)


def test_registry_errors_are_clear():
  assert {'resnet20', 'resnet110', 'resnet20_b'} <= set(list_models())
  with pytest.raises(UserError, match=r"Unknown model 'resnet21'. Did you mean .*'resnet20'"):
    create_model('resnet21', num_classes=10)
  with pytest.raises(UserError, match='no field.*widht'):
    create_model('resnet20', num_classes=10, widht=3)


# Published counts not in the reference table: torchvision's ImageNet models with a 10-class
# head, and the papers' rounded figures (PreAct: He et al. 2016b; WRN: Zagoruyko & Komodakis;
# ResNeXt-29 8x64d: Xie et al. 2017).
EXACT_OTHER = [
    ('resnet18_imagenet', 11_181_642), ('resnet34_imagenet', 21_289_802),
    ('resnet50_imagenet', 23_528_522), ('resnet101_imagenet', 42_520_650),
    ('resnet152_imagenet', 58_164_298), ('resnet50', 23_520_842),
]
ROUNDED = [('preact_resnet164', 1.7), ('preact_resnet1001', 10.2), ('wrn40_4', 8.9),
           ('wrn16_8', 11.0), ('resnext29_8x64d', 34.4)]
TABLE = [  # docs/reference.md, rows beyond He et al.'s: params and MACs
    ('resnet18', 11_173_962, 11_220_132, 555.42), ('preact_resnet18', 11_171_146, 11_217_316, 555.42),
    ('wrn16_4', 2_748_890, 2_772_020, 392.61), ('wrn28_2', 1_467_610, 1_479_220, 214.35),
    ('wrn28_10', 36_479_194, 36_536_884, 5243.33),
]
MACS_HE = {'resnet20': 40.55, 'resnet20_b': 40.81, 'resnet32': 68.86, 'resnet44': 97.17,
           'resnet56': 125.49, 'resnet110': 252.89, 'resnet1202': 2829.24}


@pytest.mark.parametrize('name,p10,p100,macs', TABLE)
def test_reference_table_params_and_macs(name, p10, p100, macs):
  s10 = summarize(create_model(name, num_classes=10), (32, 32, 3))
  assert s10.params == p10 and round(s10.macs / 1e6, 2) == macs
  assert summarize(create_model(name, num_classes=100), (32, 32, 3)).params == p100


@pytest.mark.parametrize('name,macs', sorted(MACS_HE.items()))
def test_he_et_al_macs(name, macs):
  assert round(summarize(create_model(name, num_classes=10), (32, 32, 3)).macs / 1e6, 2) == macs


@pytest.mark.parametrize('name,expected', EXACT_OTHER)
def test_torchvision_param_counts(name, expected):
  assert count(abstract_variables(create_model(name, num_classes=10))['params']) == expected


@pytest.mark.parametrize('name,millions', ROUNDED)
def test_paper_param_counts(name, millions):
  """The papers' rounded figures count conv and dense weights (PreAct-1001: 10.18M of 10.33M)."""
  params = abstract_variables(create_model(name, num_classes=10))['params']
  weights = sum(x.size for path, x in traverse_util.flatten_dict(params).items()
                if path[-1] == 'kernel')
  assert round(weights / 1e6, 1) == millions


def test_resnext29_32x4d_param_count():
  """kuangliu's ResNeXt29_32x4d (the paper's template: outputs 256/512/1024)."""
  assert count(abstract_variables(create_model('resnext29_32x4d', num_classes=10))['params']) == 4_775_754


@pytest.mark.parametrize('name', list_models())
def test_every_model_maps_images_to_logits(name):
  size = 96 if name == 'bottleneck96' else 32
  model = create_model(name, num_classes=7)
  out = jax.eval_shape(lambda: model.init_with_output(
      {'params': jax.random.key(0), 'dropout': jax.random.key(1)}, jnp.zeros((2, size, size, 3)),
      train=True, mutable=['params', 'batch_stats'])[0])
  assert out.shape == (2, 7) and out.dtype == jnp.float32


def stage_shapes(name, size, channels=3):
  return dict(summarize(create_model(name, num_classes=10), (size, size, channels)).outputs)


@pytest.mark.slow
def test_tutorial_feature_maps():
  assert stage_shapes('plain_resnet', 32)['stage4'] == (4, 4, 256)
  b96 = stage_shapes('bottleneck96', 96)
  assert (b96['stage1'], b96['stage2']) == ((24, 24, 128), (12, 12, 512))
  model = create_model('bottleneck96', num_classes=10)
  x = jnp.zeros((1, 96, 96, 3))
  variables = model.init(jax.random.key(0), x, train=False)
  _, state = model.apply(variables, x, train=False, capture_intermediates=True, mutable=True)
  assert state['intermediates']['stem']['conv']['__call__'][0].shape == (1, 48, 48, 32)
  r18 = stage_shapes('resnet18_imagenet', 224, channels=1)
  assert [r18[f'stage{i}'][:2] for i in range(1, 5)] == [(56, 56), (28, 28), (14, 14), (7, 7)]


def test_plain_resnet_has_no_batch_norm():
  variables = abstract_variables(create_model('plain_resnet', num_classes=10))
  assert 'batch_stats' not in variables


@pytest.mark.slow
def test_zero_init_last_bn_starts_blocks_as_identity():
  model = create_model('resnet18', num_classes=10, block_options={'zero_init_last_bn': True})
  params = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False)['params']
  assert not jnp.any(params['stage1_block1']['bn2']['scale'])
  assert jnp.all(params['stage1_block1']['bn1']['scale'] == 1)


@pytest.mark.slow
def test_wrn_dropout_is_active_only_in_training():
  model = create_model('wrn16_4', num_classes=10, block_options={'dropout_rate': 0.5})
  x = jax.random.normal(jax.random.key(0), (2, 32, 32, 3))
  variables = model.init(jax.random.key(0), x, train=False)
  run = lambda key: model.apply(variables, x, train=True, mutable=['batch_stats'],
                                rngs={'dropout': jax.random.key(key)})[0]
  assert not jnp.allclose(run(1), run(2))
  np.testing.assert_array_equal(model.apply(variables, x, train=False),
                                model.apply(variables, x, train=False))


def test_block_options_the_blocks_lack_are_refused():
  with pytest.raises(UserError, match='no option zero_init_last_bn'):
    create_model('wrn28_10', num_classes=10, block_options={'zero_init_last_bn': True})


def test_resnext_blocks_use_grouped_convs():
  params = abstract_variables(create_model('resnext29_32x4d', num_classes=10))['params']
  assert params['stage1_block1']['conv2']['kernel'].shape == (3, 3, 4, 128)  # 128 / 32 groups


def test_summary_cli_prints_the_table():
  import subprocess, sys  # noqa: E401
  out = subprocess.run([sys.executable, '-m', 'resnet_flax.models', '--summary', 'resnet20'],
                       capture_output=True, text=True, check=True).stdout
  assert '8x8x64' in out and '269,722' in out and '40.55 M' in out


@pytest.mark.parametrize('norm_cls', [RecomputedBatchNorm, UnfusedBatchNorm])
def test_unbiased_running_variance_is_pytorchs(norm_cls):
  """bn_running_var='unbiased': running_var moves towards var * n / (n - 1), as
  torch.nn.BatchNorm2d's does; the batch itself is normalised with the biased variance."""
  x = jax.random.normal(jax.random.key(0), (4, 3, 3, 2)) * 3 + 1
  n = 4 * 3 * 3
  outputs = {}
  for unbiased in (False, True):
    bn = norm_cls(momentum=0.9, unbiased_running_var=unbiased)
    variables = bn.init(jax.random.key(1), x)
    y, updates = bn.apply(variables, x, mutable=['batch_stats'])
    outputs[unbiased] = y
    var = np.var(np.asarray(x).reshape(n, 2), axis=0, ddof=1 if unbiased else 0)
    np.testing.assert_allclose(updates['batch_stats']['var'], 0.9 + 0.1 * var, rtol=1e-5)
  np.testing.assert_allclose(outputs[True], outputs[False], rtol=1e-6)


def test_tutorial_resnet18_is_the_pytorch_lessons_net():
  """The lesson's ResNet-18 (biased convs, 3x3 projections) on 1-channel images: its PyTorch
  model's 12,556,426 parameters (torchvision's resnet18 with a 10-class head: 11,181,642)."""
  variables = abstract_variables(create_model('tutorial_resnet18', num_classes=10), (1, 32, 32, 1))
  assert count(variables['params']) == 12_556_426
  shortcut = variables['params']['stage2_block1']['shortcut']['conv']
  assert shortcut['kernel'].shape == (3, 3, 64, 128) and shortcut['bias'].shape == (128,)
  assert 'shortcut' not in variables['params']['stage1_block1']


@pytest.mark.parametrize('name, trainable, total', [('keras_resnet18', 11_223_140, 11_230_948),
                                                    ('keras_resnet34', 21_335_012, 21_350_244)])
def test_keras_lesson_nets_have_the_lessons_variables(name, trainable, total):
  """The Keras lesson's ResNet-18/34 on 32x32x3, 100 classes: Keras's trainable and total
  (with BatchNorm's moving statistics) counts (fidelity/keras_nets.py's models); biased convs,
  1x1 projections without BN where a block strides."""
  variables = abstract_variables(create_model(name, num_classes=100), (1, 32, 32, 3))
  assert count(variables['params']) == trainable and count(variables) == total
  shortcut = variables['params']['stage2_block1']['shortcut']
  assert set(shortcut) == {'conv'} and shortcut['conv']['kernel'].shape == (1, 1, 64, 128)


def test_keras_same_padding_is_tfs():
  """TF's 'same': (0, 1) for a stride-2 3x3 conv on an even size, (1, 1) on an odd one or at
  stride 1 (PyTorch's symmetric padding would shift every stride-2 output by a pixel)."""
  from resnet_flax.models.layers import same_padding
  assert same_padding(np.zeros((1, 14, 14, 3)), 3, 2) == ((0, 1), (0, 1))
  assert same_padding(np.zeros((1, 7, 7, 3)), 3, 2) == ((1, 1), (1, 1))
  assert same_padding(np.zeros((1, 14, 14, 3)), 3, 1) == ((1, 1), (1, 1))
