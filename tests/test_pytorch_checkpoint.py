"""PyTorch checkpoints: both file formats, refusing code-running pickles, the CIFAR ResNet mapping.

Fixture files are written by a tiny writer below that produces torch's byte layout
without torch. Where torch is importable, real torch.save files and a real PyTorch
ResNet-20 are checked too.
"""

import collections
import io
import itertools
import os
import pickle
import subprocess
import zipfile

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from resnet_flax.errors import UserError
from resnet_flax.models import create_model
from resnet_flax.pytorch.from_pytorch import check_compatible, cifar_resnet_variables
from resnet_flax.pytorch.checkpoint import load_state_dict

# --- A writer of torch's file formats, without torch ----------------------------------------------


def _stand_in(module, qualname):
  """A class that the writer pickles as the global `module.qualname`."""
  return type(qualname, (), {'__module__': module, '__qualname__': qualname})


REBUILD_TENSOR_V2 = _stand_in('torch._utils', '_rebuild_tensor_v2')
REBUILD_PARAMETER = _stand_in('torch._utils', '_rebuild_parameter')
STORAGE_NAMES = {np.dtype(dtype): name for dtype, name in [
    ('float32', 'FloatStorage'), ('float64', 'DoubleStorage'), ('float16', 'HalfStorage'),
    (ml_dtypes.bfloat16, 'BFloat16Storage'), ('int64', 'LongStorage'), ('int32', 'IntStorage'),
    ('uint8', 'ByteStorage'), ('bool', 'BoolStorage')]}
STORAGE_TYPES = {(module, name): _stand_in(module, name)
                 for module in ('torch', 'torch.cuda') for name in STORAGE_NAMES.values()}
STAND_INS = {REBUILD_TENSOR_V2, REBUILD_PARAMETER, *STORAGE_TYPES.values()}
_keys = itertools.count()


class Storage:
  """A flat array that the file stores once, under `key`, however many tensors view it."""

  def __init__(self, data, module='torch', location='cpu'):
    self.data = np.ascontiguousarray(data).reshape(-1)
    self.key = str(next(_keys))
    self.type = STORAGE_TYPES[module, STORAGE_NAMES[self.data.dtype]]
    self.location = location


class Tensor:
  """Pickles as torch pickles a tensor: _rebuild_tensor_v2 over a storage."""

  def __init__(self, storage, offset, size, stride):
    self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

  def __reduce__(self):
    return REBUILD_TENSOR_V2, self.args


class Parameter:
  """Pickles as an nn.Parameter does."""

  def __init__(self, tensor):
    self.tensor = tensor

  def __reduce__(self):
    return REBUILD_PARAMETER, (self.tensor, True, collections.OrderedDict())


def tensor(array, **storage_kwargs):
  """A contiguous tensor with a storage of its own."""
  array = np.asarray(array)
  stride = [int(np.prod(array.shape[i + 1:])) for i in range(array.ndim)]
  return Tensor(Storage(array, **storage_kwargs), 0, array.shape, stride)


def state_dict(arrays, **storage_kwargs):
  """An OrderedDict with `_metadata`, like nn.Module.state_dict()."""
  sd = collections.OrderedDict((k, tensor(v, **storage_kwargs)) for k, v in arrays.items())
  sd._metadata = collections.OrderedDict({'': {'version': 1}})
  return sd


class TorchPickler(pickle._Pickler):
  """Protocol 2 with torch's persistent ids; the stand-ins are written as the globals they name."""

  def __init__(self, file, legacy):
    super().__init__(file, protocol=2)
    self.legacy = legacy
    self.storages = {}

  def persistent_id(self, obj):
    if not isinstance(obj, Storage):
      return None
    self.storages[obj.key] = obj
    pid = ('storage', obj.type, obj.key, obj.location, obj.data.size)
    return pid + (None,) if self.legacy else pid  # legacy ids end in (no) view metadata

  def save_global(self, obj, name=None):
    if obj not in STAND_INS:
      return super().save_global(obj, name)
    self.write(pickle.GLOBAL + f'{obj.__module__}\n{obj.__qualname__}\n'.encode())
    self.memoize(obj)


def write_checkpoint(path, obj, legacy=False):
  """Writes `obj` as torch.save does: zip archive, or the legacy stream if `legacy`."""
  buffer = io.BytesIO()
  pickler = TorchPickler(buffer, legacy)
  pickler.dump(obj)
  storages = sorted(pickler.storages.items())
  if legacy:
    with open(path, 'wb') as f:
      sys_info = {'protocol_version': 1001, 'little_endian': True,
                  'type_sizes': {'short': 2, 'int': 4, 'long': 4}}
      for header in (0x1950a86a20f9469cfc6c, 1001, sys_info):
        pickle.dump(header, f, protocol=2)
      f.write(buffer.getvalue())
      pickle.dump([key for key, _ in storages], f, protocol=2)
      for _, storage in storages:
        f.write(np.int64(storage.data.size).tobytes() + storage.data.tobytes())
  else:
    prefix = path.stem  # torch names the archive's folder after the file
    with zipfile.ZipFile(path, 'w') as archive:
      archive.writestr(f'{prefix}/data.pkl', buffer.getvalue())
      archive.writestr(f'{prefix}/byteorder', 'little')
      for key, storage in storages:
        archive.writestr(f'{prefix}/data/{key}', storage.data.tobytes())
      archive.writestr(f'{prefix}/version', '3\n')
  return path


FORMATS = pytest.mark.parametrize('legacy', [False, True], ids=['zip', 'legacy'])

# --- Reading --------------------------------------------------------------------------------------


@FORMATS
def test_round_trip_of_dtypes_and_shapes(tmp_path, legacy):
  rng = np.random.default_rng(0)
  arrays = {
      'conv.weight': rng.normal(size=(4, 3, 3, 3)).astype(np.float32),
      'scalar': np.array(2.5),
      'half': rng.normal(size=(5,)).astype(np.float16),
      'bf16': rng.normal(size=(2, 2)).astype(ml_dtypes.bfloat16),
      'bn.num_batches_tracked': np.array(7, np.int64),
      'ints': np.arange(6, dtype=np.int32).reshape(3, 2),
      'mask': np.array([True, False, True]),
      'bytes': np.arange(4, dtype=np.uint8),
      'empty': np.zeros((0, 3), np.float32),
  }
  loaded = load_state_dict(write_checkpoint(tmp_path / 'sd.pth', state_dict(arrays), legacy))
  assert list(loaded) == list(arrays)
  for name, array in arrays.items():
    assert loaded[name].dtype == array.dtype and loaded[name].shape == array.shape, name
    np.testing.assert_array_equal(loaded[name], array)


@FORMATS
def test_views_share_one_storage(tmp_path, legacy):
  base = np.arange(24, dtype=np.float32)
  storage = Storage(base)
  views = {  # (offset, size, stride), as torch records views
      'matrix': (0, (4, 6), (6, 1)), 'transposed': (0, (6, 4), (1, 6)), 'slice': (6, (4,), (1,)),
      'strided': (7, (2, 2), (12, 2)), 'expanded': (1, (3, 2), (0, 1)), 'last': (23, (), ()),
  }
  sd = {name: Tensor(storage, *view) for name, view in views.items()}
  loaded = load_state_dict(write_checkpoint(tmp_path / 'views.pth', sd, legacy))
  for name, (offset, size, stride) in views.items():
    expected = np.lib.stride_tricks.as_strided(base[offset:], size, [4 * s for s in stride])
    np.testing.assert_array_equal(loaded[name], expected, err_msg=name)
    assert loaded[name].flags.writeable


@FORMATS
def test_view_past_its_storage_is_refused(tmp_path, legacy):
  sd = {'w': Tensor(Storage(np.zeros(24, np.float32)), 20, (2, 3), (3, 1))}
  with pytest.raises(UserError, match='past the end of storage'):
    load_state_dict(write_checkpoint(tmp_path / 'oob.pth', sd, legacy))


@FORMATS
def test_data_parallel_prefix_is_stripped_and_parameters_read(tmp_path, legacy):
  sd = {'module.conv1.weight': Parameter(tensor(np.ones((2, 2), np.float32))),
        'module.linear.bias': tensor(np.arange(3, dtype=np.float32))}
  loaded = load_state_dict(write_checkpoint(tmp_path / 'dp.pth', sd, legacy))
  assert sorted(loaded) == ['conv1.weight', 'linear.bias']
  np.testing.assert_array_equal(loaded['linear.bias'], [0, 1, 2])


def test_prefix_kept_unless_every_name_has_it(tmp_path):
  sd = {'module.weight': tensor(np.ones(1, np.float32)), 'bias': tensor(np.ones(1, np.float32))}
  loaded = load_state_dict(write_checkpoint(tmp_path / 'mixed.pth', sd))
  assert sorted(loaded) == ['bias', 'module.weight']


@FORMATS
@pytest.mark.parametrize('wrapper_key', ['state_dict', 'model', 'net'])
def test_wrapped_training_checkpoint(tmp_path, legacy, wrapper_key):
  """akamaster's .th files: {'epoch', 'state_dict', 'best_prec1'}, DataParallel, saved from CUDA."""
  sd = state_dict({'module.conv1.weight': np.full((2, 1), 3.0, np.float32)},
                  module='torch.cuda', location='cuda:0')
  checkpoint = {'epoch': 182, wrapper_key: sd, 'best_prec1': 92.16, 'note': 'non-tensor values'}
  loaded = load_state_dict(write_checkpoint(tmp_path / 'resnet20.th', checkpoint, legacy))
  assert list(loaded) == ['conv1.weight']
  np.testing.assert_array_equal(loaded['conv1.weight'], np.full((2, 1), 3.0))


class RunsCode:
  """A pickle payload: unpickling it calls `function(argument)`."""

  def __init__(self, function, argument):
    self.function, self.argument = function, argument

  def __reduce__(self):
    return self.function, (self.argument,)


@FORMATS
@pytest.mark.parametrize('payload', ['os.system', 'eval', 'subprocess.Popen'])
def test_code_running_pickle_is_refused(tmp_path, legacy, payload):
  marker = tmp_path / 'pwned'
  command = f'touch {marker}'
  code = {'os.system': RunsCode(os.system, command),
          'eval': RunsCode(eval, f'open({str(marker)!r}, "w")'),
          'subprocess.Popen': RunsCode(subprocess.Popen, ['touch', str(marker)])}[payload]
  sd = {'conv1.weight': tensor(np.ones(3, np.float32)), 'evil': code}
  path = write_checkpoint(tmp_path / 'evil.pth', sd, legacy)
  refused = r'tries to import \S+, which was refused.*only plain state dicts'
  with pytest.raises(UserError, match=refused):
    load_state_dict(path)
  assert not marker.exists()


@FORMATS
# Cut in the legacy format's sys_info, its main pickle, and its storages.
@pytest.mark.parametrize('keep', [0.005, 0.02, 0.5, 0.999])
def test_truncated_file(tmp_path, legacy, keep):
  sd = state_dict({'w': np.ones((64, 64), np.float32), 'b': np.ones(64, np.float32)})
  path = write_checkpoint(tmp_path / 'cut.pth', sd, legacy)
  data = path.read_bytes()
  path.write_bytes(data[:int(len(data) * keep)])
  with pytest.raises(UserError, match='not a readable PyTorch checkpoint.*truncated'):
    load_state_dict(path)


def _zip_without_pickle(path):
  with zipfile.ZipFile(path, 'w') as archive:
    archive.writestr('x/version', '3\n')


@pytest.mark.parametrize('content', [
    b'', b'hello world', pickle.dumps({'w': [1.0, 2.0]}), pickle.dumps(0x1950a86a20f9469cfc6c),
    _zip_without_pickle,
], ids=['empty', 'text', 'plain-pickle', 'magic-only', 'zip-without-data.pkl'])
def test_not_a_checkpoint(tmp_path, content):
  path = tmp_path / 'not.pth'
  if callable(content):
    content(path)
  else:
    path.write_bytes(content)
  with pytest.raises(UserError, match='not a readable PyTorch checkpoint'):
    load_state_dict(path)


def test_missing_file_and_no_tensors(tmp_path):
  with pytest.raises(UserError, match='Cannot read'):
    load_state_dict(tmp_path / 'absent.pth')
  path = write_checkpoint(tmp_path / 'meta.pth', {'epoch': 3, 'arch': 'resnet20'})
  with pytest.raises(UserError, match=r'holds no tensors \(its keys: epoch, arch\)'):
    load_state_dict(path)

# --- Mapping the CIFAR ResNet ---------------------------------------------------------------------


def akamaster_state_dict(rng, option='A', depth=20, num_classes=10):
  """Random weights and BN statistics under akamaster/pytorch_resnet_cifar10's names."""
  sd = {}

  def conv(name, out, inp, k):
    he = np.sqrt(2 / (inp * k * k))
    sd[f'{name}.weight'] = (rng.normal(size=(out, inp, k, k)) * he).astype(np.float32)

  def bn(name, c):
    sd[f'{name}.weight'] = rng.uniform(0.5, 1.5, c).astype(np.float32)
    sd[f'{name}.bias'] = rng.normal(0, 0.2, c).astype(np.float32)
    sd[f'{name}.running_mean'] = rng.normal(0, 0.2, c).astype(np.float32)
    sd[f'{name}.running_var'] = rng.uniform(0.5, 2.0, c).astype(np.float32)
    sd[f'{name}.num_batches_tracked'] = np.array(1000, np.int64)

  conv('conv1', 16, 3, 3)
  bn('bn1', 16)
  in_planes = 16
  for s, planes in enumerate((16, 32, 64), start=1):
    for b in range((depth - 2) // 6):
      p = f'layer{s}.{b}'
      conv(f'{p}.conv1', planes, in_planes, 3)
      bn(f'{p}.bn1', planes)
      conv(f'{p}.conv2', planes, planes, 3)
      bn(f'{p}.bn2', planes)
      if option == 'B' and in_planes != planes:
        conv(f'{p}.shortcut.0', planes, in_planes, 1)
        bn(f'{p}.shortcut.1', planes)
      in_planes = planes
  sd['linear.weight'] = (rng.normal(size=(num_classes, 64)) / 8).astype(np.float32)
  sd['linear.bias'] = rng.normal(0, 0.1, num_classes).astype(np.float32)
  return sd


def reference_logits(sd, images):
  """The PyTorch CIFAR ResNet forward pass in eval mode, in NumPy float64 on NCHW images."""
  w = lambda name: sd[name].astype(np.float64)

  def conv(x, name, stride):
    kernel = w(f'{name}.weight')
    pad = kernel.shape[-1] // 2
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = np.lib.stride_tricks.sliding_window_view(x, kernel.shape[2:], axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]  # n c h w kh kw
    return np.tensordot(windows, kernel, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)

  def bn(x, name):
    channel = lambda leaf: w(f'{name}.{leaf}')[None, :, None, None]
    return ((x - channel('running_mean')) / np.sqrt(channel('running_var') + 1e-5)
            * channel('weight') + channel('bias'))

  relu = lambda x: np.maximum(x, 0)
  x = relu(bn(conv(images.astype(np.float64), 'conv1', 1), 'bn1'))
  for s in (1, 2, 3):
    for b in itertools.takewhile(lambda b: f'layer{s}.{b}.conv1.weight' in sd, itertools.count()):
      p, stride = f'layer{s}.{b}', 2 if s > 1 and b == 0 else 1
      y = relu(bn(conv(x, f'{p}.conv1', stride), f'{p}.bn1'))
      y = bn(conv(y, f'{p}.conv2', 1), f'{p}.bn2')
      if f'{p}.shortcut.0.weight' in sd:
        x = bn(conv(x, f'{p}.shortcut.0', stride), f'{p}.shortcut.1')
      elif x.shape != y.shape:  # option A: subsample, zero-pad channels on both sides
        pad = (y.shape[1] - x.shape[1]) // 2
        x = np.pad(x[:, :, ::2, ::2], ((0, 0), (pad, pad), (0, 0), (0, 0)))
      x = relu(y + x)
  return x.mean(axis=(2, 3)) @ w('linear.weight').T + w('linear.bias')


def abstract_variables(model):
  images = jnp.zeros((1, 32, 32, 3))
  return jax.eval_shape(lambda: model.init(jax.random.key(0), images, train=False))


def shapes(tree):
  return jax.tree.map(lambda x: tuple(x.shape), tree)


def test_values_land_in_place():
  sd = akamaster_state_dict(np.random.default_rng(1))
  variables = cifar_resnet_variables(sd)
  params, stats = variables['params'], variables['batch_stats']
  kernel = params['stage2_block1']['conv1']['kernel']
  assert kernel.shape == (3, 3, 16, 32) and kernel.dtype == np.float32
  assert kernel[0, 2, 5, 7] == sd['layer2.0.conv1.weight'][7, 5, 0, 2]
  np.testing.assert_array_equal(params['stem']['conv']['kernel'][1, 0, :, 3],
                                sd['conv1.weight'][3, :, 1, 0])
  np.testing.assert_array_equal(params['head']['kernel'], sd['linear.weight'].T)
  np.testing.assert_array_equal(params['head']['bias'], sd['linear.bias'])
  np.testing.assert_array_equal(params['stage3_block3']['bn2']['scale'], sd['layer3.2.bn2.weight'])
  np.testing.assert_array_equal(params['stem']['bn']['bias'], sd['bn1.bias'])
  bn = stats['stage1_block2']['bn1']
  np.testing.assert_array_equal(bn['mean'], sd['layer1.1.bn1.running_mean'])
  np.testing.assert_array_equal(bn['var'], sd['layer1.1.bn1.running_var'])


@pytest.mark.parametrize('option,legacy', [('A', True), ('B', False)])
def test_resnet20_from_file_matches_reference_forward(tmp_path, option, legacy):
  """File -> arrays -> our variables -> logits, against an independent NumPy forward pass."""
  rng = np.random.default_rng(2)
  sd = akamaster_state_dict(rng, option)
  checkpoint = {'epoch': 200, 'state_dict': state_dict({f'module.{k}': v for k, v in sd.items()})}
  path = write_checkpoint(tmp_path / 'r20.th', checkpoint, legacy)
  variables = cifar_resnet_variables(load_state_dict(path))
  model = create_model('resnet20' if option == 'A' else 'resnet20_b', num_classes=10)
  expected = abstract_variables(model)
  check_compatible(expected, variables)
  assert jax.tree.structure(variables) == jax.tree.structure(expected)
  assert shapes(variables) == shapes(expected)
  images = rng.normal(size=(4, 3, 32, 32)).astype(np.float32)
  logits = model.apply(variables, images.transpose(0, 2, 3, 1), train=False)
  np.testing.assert_allclose(logits, reference_logits(sd, images), rtol=1e-4, atol=1e-5)


def test_stray_tensors_are_named():
  sd = akamaster_state_dict(np.random.default_rng(3))
  sd['layer1.0.conv1.bias'] = np.zeros(16, np.float32)
  sd['fc.weight'] = np.zeros((10, 64), np.float32)
  strays = r'2 tensor\(s\) fit nowhere: layer1.0.conv1.bias \(16,\), fc.weight \(10, 64\)\.$'
  with pytest.raises(UserError, match=strays):
    cifar_resnet_variables(sd)


@pytest.mark.parametrize('model_name,classes,message', [
    ('resnet32', 10, r'60 missing: batch_stats/stage1_block4/bn1/mean, .* and 55 more\. Pick'),
    ('resnet20', 100, r'2 with other shapes: '
                      r'params/head/bias \(model \(100,\), checkpoint \(10,\)\), '
                      r'params/head/kernel \(model \(64, 100\), checkpoint \(64, 10\)\)\.'),
    ('resnet20_b', 10, r'10 missing: batch_stats/stage2_block1/shortcut/bn/mean, .* and 5 more\.'),
])
def test_check_compatible_names_the_differences(model_name, classes, message):
  variables = cifar_resnet_variables(akamaster_state_dict(np.random.default_rng(4)))
  with pytest.raises(UserError, match=message):
    check_compatible(abstract_variables(create_model(model_name, num_classes=classes)), variables)


def test_check_compatible_names_unexpected_keys():
  variables = cifar_resnet_variables(akamaster_state_dict(np.random.default_rng(5), option='B'))
  unexpected = r'10 unexpected: params/stage2_block1/shortcut/conv/kernel, .* and 5 more\. Pick'
  with pytest.raises(UserError, match=unexpected):
    check_compatible(abstract_variables(create_model('resnet20', num_classes=10)), variables)

# --- Against real torch, where it is installed ----------------------------------------------------


@pytest.fixture
def torch():
  return pytest.importorskip('torch')


@FORMATS
def test_reads_real_torch_save(tmp_path, torch, legacy):
  torch.manual_seed(0)
  big = torch.randn(8, 6)
  sd = collections.OrderedDict([
      ('float', torch.randn(3, 4)), ('double', torch.randn(2, dtype=torch.float64)),
      ('half', torch.randn(5).half()), ('bf16', torch.randn(2, 3).bfloat16()),
      ('long', torch.arange(7)), ('bool', torch.tensor([True, False])),
      ('scalar', torch.tensor(1.5)),
      ('transposed', big.t()), ('offset_slice', big[2:5, 1::2]), ('expanded', big[0].expand(3, 6)),
      ('param', torch.nn.Parameter(torch.randn(2, 2))),
  ])
  path = tmp_path / 'real.pth'
  torch.save(sd, path, _use_new_zipfile_serialization=not legacy)
  loaded = load_state_dict(path)
  assert list(loaded) == list(sd)
  for name, value in sd.items():
    value = value.detach()
    expected = (value.float() if value.dtype == torch.bfloat16 else value).numpy()
    np.testing.assert_array_equal(np.asarray(loaded[name], expected.dtype), expected, err_msg=name)
    assert loaded[name].shape == tuple(value.shape)


@FORMATS
def test_torch_reads_the_fixture_writer(tmp_path, torch, legacy):
  """The writer above produces what torch.load expects, so the fixtures are real checkpoints."""
  base = np.arange(24, dtype=np.float32)
  sd = state_dict({'w': base[:6].reshape(2, 3), 'h': base[:3].astype(np.float16)},
                  module='torch.cuda', location='cuda:0')
  sd['view'] = Tensor(Storage(base), 7, (2, 2), (12, 2))
  path = write_checkpoint(tmp_path / 'fixture.th', {'epoch': 1, 'state_dict': sd}, legacy)
  loaded = torch.load(path, weights_only=True, map_location='cpu')['state_dict']
  assert list(loaded) == ['w', 'h', 'view']
  np.testing.assert_array_equal(loaded['w'].numpy(), base[:6].reshape(2, 3))
  np.testing.assert_array_equal(loaded['h'].numpy(), base[:3].astype(np.float16))
  np.testing.assert_array_equal(loaded['view'].numpy(), [[7, 9], [19, 21]])


def torch_cifar_resnet(torch, option, num_classes=10, blocks=3):
  """akamaster/pytorch_resnet_cifar10's ResNet (resnet.py), BasicBlock with option A or B."""
  nn, F = torch.nn, torch.nn.functional

  class LambdaLayer(nn.Module):
    def __init__(self, fn):
      super().__init__()
      self.fn = fn

    def forward(self, x):
      return self.fn(x)

  class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride):
      super().__init__()
      self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
      self.bn1 = nn.BatchNorm2d(planes)
      self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
      self.bn2 = nn.BatchNorm2d(planes)
      self.shortcut = nn.Sequential()
      if stride != 1 or in_planes != planes:
        if option == 'A':
          self.shortcut = LambdaLayer(lambda x: F.pad(
              x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4), 'constant', 0))
        else:
          self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                        nn.BatchNorm2d(planes))

    def forward(self, x):
      out = F.relu(self.bn1(self.conv1(x)))
      out = self.bn2(self.conv2(out))
      return F.relu(out + self.shortcut(x))

  class ResNet(nn.Module):
    def __init__(self):
      super().__init__()
      self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
      self.bn1 = nn.BatchNorm2d(16)
      self.in_planes = 16
      self.layer1 = self._make_layer(16, 1)
      self.layer2 = self._make_layer(32, 2)
      self.layer3 = self._make_layer(64, 2)
      self.linear = nn.Linear(64, num_classes)

    def _make_layer(self, planes, stride):
      layers = []
      for s in [stride] + [1] * (blocks - 1):
        layers.append(BasicBlock(self.in_planes, planes, s))
        self.in_planes = planes
      return nn.Sequential(*layers)

    def forward(self, x):
      out = F.relu(self.bn1(self.conv1(x)))
      out = self.layer3(self.layer2(self.layer1(out)))
      out = F.avg_pool2d(out, out.size()[3])
      return self.linear(out.view(out.size(0), -1))

  return ResNet()


@pytest.mark.parametrize('option,legacy', [('A', False), ('A', True), ('B', False)])
def test_logits_match_torch_resnet20(tmp_path, torch, option, legacy):
  torch.manual_seed(0)
  net = torch_cifar_resnet(torch, option)
  with torch.no_grad():
    for module in net.modules():
      if isinstance(module, torch.nn.BatchNorm2d):
        module.weight.uniform_(0.5, 1.5)
        module.bias.normal_(0, 0.2)
        module.running_mean.normal_(0, 0.2)
        module.running_var.uniform_(0.5, 2.0)
  net.eval()
  path = tmp_path / 'resnet20.th'
  checkpoint = {'epoch': 200, 'state_dict': torch.nn.DataParallel(net).state_dict(),
                'best_prec1': 91.7}
  torch.save(checkpoint, path, _use_new_zipfile_serialization=not legacy)

  variables = cifar_resnet_variables(load_state_dict(path))
  model = create_model('resnet20' if option == 'A' else 'resnet20_b', num_classes=10)
  check_compatible(abstract_variables(model), variables)
  images = np.random.default_rng(6).normal(size=(8, 3, 32, 32)).astype(np.float32)
  with torch.no_grad():
    expected = net(torch.from_numpy(images)).numpy()
  logits = model.apply(variables, images.transpose(0, 2, 3, 1), train=False)
  np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
