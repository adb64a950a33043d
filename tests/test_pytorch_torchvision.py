"""torchvision and kuangliu/pytorch-cifar ResNets: layout detection, mapping, head re-init.

Fixture files come from the torch-free writer in test_pytorch_checkpoint. Where torch is
importable, a torchvision ResNet written out in torch (torchvision itself cannot be
installed here) is saved with torch.save and its logits are compared with ours.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_pytorch_checkpoint import (abstract_variables, akamaster_state_dict, shapes, state_dict,
                                     torch, write_checkpoint)  # noqa: F401 (torch: a fixture)

from resnet_flax.errors import UserError
from resnet_flax.models import create_model
from resnet_flax.pytorch.from_pytorch import (check_compatible, cifar_resnet_variables,
                                             load_pytorch_weights, pytorch_variables,
                                             torchvision_resnet_variables)

STAGES = {18: ((2, 2, 2, 2), 1), 50: ((3, 4, 6, 3), 4)}  # blocks per stage, expansion
WIDTHS = (64, 128, 256, 512)


def torchvision_state_dict(rng, depth, num_classes=1000, imagenet_stem=True, kuangliu=False):
  """Random weights and BN statistics under torchvision's names, or kuangliu's if `kuangliu`.

  num_classes=None leaves the head out, as in a backbone stripped of its classifier.
  """
  sd = {}

  def conv(name, out, inp, k):
    he = np.sqrt(2 / (inp * k * k))
    sd[f'{name}.weight'] = rng.standard_normal((out, inp, k, k), np.float32) * np.float32(he)

  def bn(name, c):
    sd[f'{name}.weight'] = rng.uniform(0.5, 1.5, c).astype(np.float32)
    sd[f'{name}.bias'] = rng.normal(0, 0.2, c).astype(np.float32)
    sd[f'{name}.running_mean'] = rng.normal(0, 0.2, c).astype(np.float32)
    sd[f'{name}.running_var'] = rng.uniform(0.5, 2.0, c).astype(np.float32)
    sd[f'{name}.num_batches_tracked'] = np.array(1000, np.int64)

  conv('conv1', 64, 3, 7 if imagenet_stem else 3)
  bn('bn1', 64)
  stage_sizes, expansion = STAGES[depth]
  projection = 'shortcut' if kuangliu else 'downsample'
  in_planes = 64
  for s, (blocks, planes) in enumerate(zip(stage_sizes, WIDTHS), start=1):
    for b in range(blocks):
      p, out = f'layer{s}.{b}', planes * expansion
      convs = ([(planes, in_planes, 3), (planes, planes, 3)] if expansion == 1 else
               [(planes, in_planes, 1), (planes, planes, 3), (out, planes, 1)])
      for i, shape in enumerate(convs, start=1):
        conv(f'{p}.conv{i}', *shape)
        bn(f'{p}.bn{i}', shape[0])
      if (s > 1 and b == 0) or in_planes != out:
        conv(f'{p}.{projection}.0', out, in_planes, 1)
        bn(f'{p}.{projection}.1', out)
      in_planes = out
  if num_classes is not None:
    head = 'linear' if kuangliu else 'fc'
    sd[f'{head}.weight'] = rng.normal(0, in_planes ** -0.5, (num_classes, in_planes)).astype(
        np.float32)
    sd[f'{head}.bias'] = rng.normal(0, 0.1, num_classes).astype(np.float32)
  return sd


def assert_trees_equal(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  jax.tree.map(np.testing.assert_array_equal, a, b)


# --- Mapping --------------------------------------------------------------------------------------


@pytest.mark.parametrize('model_name,depth,imagenet_stem,kuangliu', [
    ('resnet18_imagenet', 18, True, False), ('resnet50_imagenet', 50, True, False),
    ('resnet18', 18, False, True), ('resnet50', 50, False, True),
])
def test_layout_fits_our_model(model_name, depth, imagenet_stem, kuangliu):
  sd = torchvision_state_dict(np.random.default_rng(0), depth, 10, imagenet_stem, kuangliu)
  variables = torchvision_resnet_variables(sd)
  expected = abstract_variables(create_model(model_name, num_classes=10))
  check_compatible(expected, variables)
  assert jax.tree.structure(variables) == jax.tree.structure(expected)
  assert shapes(variables) == shapes(expected)
  assert_trees_equal(pytorch_variables(sd), variables)


def test_bottleneck_values_land_in_place():
  sd = torchvision_state_dict(np.random.default_rng(1), 50)
  variables = torchvision_resnet_variables(sd)
  params, stats = variables['params'], variables['batch_stats']
  stem = params['stem']['conv']['kernel']
  assert stem.shape == (7, 7, 3, 64) and stem.dtype == np.float32
  assert stem[6, 1, 2, 9] == sd['conv1.weight'][9, 2, 6, 1]
  kernel = params['stage3_block4']['conv2']['kernel']
  assert kernel.shape == (3, 3, 256, 256)
  assert kernel[2, 0, 5, 7] == sd['layer3.3.conv2.weight'][7, 5, 2, 0]
  np.testing.assert_array_equal(params['stage4_block3']['conv3']['kernel'][0, 0, :, 11],
                                sd['layer4.2.conv3.weight'][11, :, 0, 0])
  projection = params['stage2_block1']['shortcut']['conv']['kernel']
  assert projection.shape == (1, 1, 256, 512)
  assert projection[0, 0, 200, 300] == sd['layer2.0.downsample.0.weight'][300, 200, 0, 0]
  bn3 = 'layer1.1.bn3'
  np.testing.assert_array_equal(params['stage1_block2']['bn3']['scale'], sd[f'{bn3}.weight'])
  np.testing.assert_array_equal(params['stage1_block2']['bn3']['bias'], sd[f'{bn3}.bias'])
  np.testing.assert_array_equal(stats['stage1_block2']['bn3']['mean'], sd[f'{bn3}.running_mean'])
  np.testing.assert_array_equal(stats['stage1_block1']['shortcut']['bn']['var'],
                                sd['layer1.0.downsample.1.running_var'])
  assert params['head']['kernel'].shape == (2048, 1000)
  np.testing.assert_array_equal(params['head']['kernel'], sd['fc.weight'].T)
  np.testing.assert_array_equal(params['head']['bias'], sd['fc.bias'])


def test_kuangliu_names_land_in_place():
  sd = torchvision_state_dict(np.random.default_rng(2), 18, 10, imagenet_stem=False, kuangliu=True)
  variables = torchvision_resnet_variables(sd)
  params, stats = variables['params'], variables['batch_stats']
  projection = params['stage3_block1']['shortcut']['conv']['kernel']
  assert projection.shape == (1, 1, 128, 256)
  assert projection[0, 0, 100, 3] == sd['layer3.0.shortcut.0.weight'][3, 100, 0, 0]
  np.testing.assert_array_equal(stats['stage4_block1']['shortcut']['bn']['mean'],
                                sd['layer4.0.shortcut.1.running_mean'])
  np.testing.assert_array_equal(params['head']['kernel'], sd['linear.weight'].T)
  assert params['stem']['conv']['kernel'][0, 2, 1, 5] == sd['conv1.weight'][5, 1, 0, 2]


# --- Detection and its errors ---------------------------------------------------------------------


def test_akamaster_layout_is_detected():
  sd = akamaster_state_dict(np.random.default_rng(3), option='B')
  assert_trees_equal(pytorch_variables(sd), cifar_resnet_variables(sd))


def test_torchvision_names_do_not_fit_the_cifar_layout():
  sd = torchvision_state_dict(np.random.default_rng(4), 18, 10)
  strays = (r'layout of a PyTorch CIFAR ResNet .*: 20 tensor\(s\) fit nowhere: '
            r'layer2\.0\.downsample\.0\.weight \(128, 64, 1, 1\), .* and 15 more\.$')
  with pytest.raises(UserError, match=strays):
    cifar_resnet_variables(sd)


@pytest.mark.parametrize('extra,message', [
    ({'layer1.0.se.fc1.weight': (4, 64), 'features.0.weight': (64, 3, 3, 3)},
     r': 2 tensor\(s\) fit neither a PyTorch CIFAR ResNet \(conv1, .*\) nor a torchvision or '
     r'kuangliu/pytorch-cifar ResNet \(conv1, .*, fc or linear\): layer1\.0\.se\.fc1\.weight '
     r'\(4, 64\), features\.0\.weight \(64, 3, 3, 3\)\.$'),
    ({f'features.denseblock1.conv{i}.weight': (8, 8, 1, 1) for i in range(7)},
     r': 7 tensor\(s\) fit neither .*: features\.denseblock1\.conv0\.weight \(8, 8, 1, 1\), .* '
     r'and 2 more\.$'),
])
def test_unknown_layout_names_the_tensors(extra, message):
  sd = torchvision_state_dict(np.random.default_rng(5), 18, 10)
  sd.update({name: np.zeros(shape, np.float32) for name, shape in extra.items()})
  with pytest.raises(UserError, match=message):
    pytorch_variables(sd)


def test_stray_leaf_in_the_torchvision_layout_is_named():
  sd = torchvision_state_dict(np.random.default_rng(6), 18, 10)
  sd['layer1.0.conv3.bias'] = np.zeros(64, np.float32)
  with pytest.raises(UserError, match=r'layout of a torchvision or kuangliu/pytorch-cifar ResNet '
                                      r'.*: 1 tensor\(s\) fit nowhere: layer1\.0\.conv3\.bias '
                                      r'\(64,\)\.$'):
    pytorch_variables(sd)


@pytest.mark.parametrize('original,extra,message', [
    ('fc', 'linear', r'fc\.weight and linear\.weight both map to params/head/kernel'),
    ('layer2.0.downsample', 'layer2.0.shortcut',
     r'layer2\.0\.downsample\.0\.weight and layer2\.0\.shortcut\.0\.weight both map to '
     r'params/stage2_block1/shortcut/conv/kernel'),
])
def test_two_layouts_mixed_are_refused(original, extra, message):
  sd = torchvision_state_dict(np.random.default_rng(7), 18, 10)
  sd.update({name.replace(f'{original}.', f'{extra}.', 1): value for name, value in sd.items()
             if name.startswith(f'{original}.')})
  with pytest.raises(UserError, match=message):
    torchvision_resnet_variables(sd)


# --- Loading a file, with or without the checkpoint's head ----------------------------------------


def test_load_from_file(tmp_path):
  sd = torchvision_state_dict(np.random.default_rng(8), 18, 10, imagenet_stem=False, kuangliu=True)
  path = write_checkpoint(tmp_path / 'ckpt.pth', state_dict(sd), legacy=True)
  model = create_model('resnet18', num_classes=10)
  variables = load_pytorch_weights(path, abstract_variables(model))
  assert_trees_equal(variables, torchvision_resnet_variables(sd))


@pytest.mark.parametrize('checkpoint_classes,message', [
    (1000, r'2 with other shapes: params/head/bias \(model \(10,\), checkpoint \(1000,\)\), '
           r'params/head/kernel \(model \(512, 10\), checkpoint \(512, 1000\)\)\. Pick'),
    (None, r'2 missing: params/head/bias, params/head/kernel\. Pick'),
])
def test_reinit_head_for_another_number_of_classes(tmp_path, checkpoint_classes, message):
  sd = torchvision_state_dict(np.random.default_rng(9), 18, checkpoint_classes)
  path = write_checkpoint(tmp_path / 'resnet18.pth', state_dict(sd))
  model = create_model('resnet18_imagenet', num_classes=10)
  expected = abstract_variables(model)
  reinit = r'pass reinit_head \(config: --config\.model\.init_reinit_head=True\)\.$'
  with pytest.raises(UserError, match=f'{message}.*{reinit}'):
    load_pytorch_weights(path, expected)
  with pytest.raises(ValueError, match='reinit_head needs init_variables'):
    load_pytorch_weights(path, expected, reinit_head=True)

  # Only the head of the caller's init is used; initialising just it keeps the test fast.
  init = {'params': {'head': nn.Dense(10).init(jax.random.key(1), jnp.zeros((1, 512)))['params']}}
  variables = load_pytorch_weights(path, expected, reinit_head=True, init_variables=init)
  assert shapes(variables) == shapes(expected)
  assert_trees_equal(variables['params']['head'], init['params']['head'])
  np.testing.assert_array_equal(variables['params']['stage4_block2']['conv2']['kernel'],
                                sd['layer4.1.conv2.weight'].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(variables['batch_stats']['stem']['bn']['var'],
                                sd['bn1.running_var'])


def test_matching_head_is_not_reported_as_reinit():
  sd = torchvision_state_dict(np.random.default_rng(10), 18, 10)
  variables = torchvision_resnet_variables(sd)
  with pytest.raises(UserError, match=r'stem/conv/kernel \(model \(3, 3, 3, 64\), checkpoint '
                                      r'\(7, 7, 3, 64\)\)\. Pick .*number of classes\.$'):
    check_compatible(abstract_variables(create_model('resnet18', num_classes=10)), variables)


# --- Against a torchvision ResNet in real torch, where it is installed ----------------------------


def torch_torchvision_resnet(torch, depth, num_classes, imagenet_stem):
  """torchvision.models.resnet's ResNet; with imagenet_stem=False, a 3x3/1 stem and no max-pool."""
  nn = torch.nn

  def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)

  def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)

  class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
      super().__init__()
      self.conv1 = conv3x3(inplanes, planes, stride)
      self.bn1 = nn.BatchNorm2d(planes)
      self.relu = nn.ReLU(inplace=True)
      self.conv2 = conv3x3(planes, planes)
      self.bn2 = nn.BatchNorm2d(planes)
      self.downsample = downsample

    def forward(self, x):
      identity = x if self.downsample is None else self.downsample(x)
      out = self.relu(self.bn1(self.conv1(x)))
      out = self.bn2(self.conv2(out))
      return self.relu(out + identity)

  class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
      super().__init__()
      self.conv1 = conv1x1(inplanes, planes)
      self.bn1 = nn.BatchNorm2d(planes)
      self.conv2 = conv3x3(planes, planes, stride)  # ResNet v1.5: the stride is on the 3x3
      self.bn2 = nn.BatchNorm2d(planes)
      self.conv3 = conv1x1(planes, planes * self.expansion)
      self.bn3 = nn.BatchNorm2d(planes * self.expansion)
      self.relu = nn.ReLU(inplace=True)
      self.downsample = downsample

    def forward(self, x):
      identity = x if self.downsample is None else self.downsample(x)
      out = self.relu(self.bn1(self.conv1(x)))
      out = self.relu(self.bn2(self.conv2(out)))
      out = self.bn3(self.conv3(out))
      return self.relu(out + identity)

  class ResNet(nn.Module):
    def __init__(self, block, layers):
      super().__init__()
      self.inplanes = 64
      if imagenet_stem:
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
      else:
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
      self.bn1 = nn.BatchNorm2d(64)
      self.relu = nn.ReLU(inplace=True)
      self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if imagenet_stem else nn.Identity()
      self.layer1 = self._make_layer(block, 64, layers[0])
      self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
      self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
      self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
      self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
      self.fc = nn.Linear(512 * block.expansion, num_classes)
      for m in self.modules():
        if isinstance(m, nn.Conv2d):
          nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')

    def _make_layer(self, block, planes, blocks, stride=1):
      downsample = None
      if stride != 1 or self.inplanes != planes * block.expansion:
        downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                   nn.BatchNorm2d(planes * block.expansion))
      layers = [block(self.inplanes, planes, stride, downsample)]
      self.inplanes = planes * block.expansion
      layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
      return nn.Sequential(*layers)

    def forward(self, x):
      x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
      x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
      return self.fc(torch.flatten(self.avgpool(x), 1))

  stage_sizes, expansion = STAGES[depth]
  return ResNet(BasicBlock if expansion == 1 else Bottleneck, stage_sizes)


def kuangliu_names(name):
  """kuangliu/pytorch-cifar names the same modules shortcut and linear."""
  name = name.replace('.downsample.', '.shortcut.')
  return 'linear.' + name.removeprefix('fc.') if name.startswith('fc.') else name


@pytest.mark.parametrize('model_name,depth,size,legacy', [
    ('resnet18_imagenet', 18, 64, False),  # torchvision's names and stem
    ('resnet50', 50, 32, True),  # kuangliu's names, CIFAR stem
])
def test_logits_match_torch(tmp_path, torch, model_name, depth, size, legacy):
  imagenet_stem = model_name.endswith('_imagenet')
  torch.manual_seed(0)
  net = torch_torchvision_resnet(torch, depth, 10, imagenet_stem)
  with torch.no_grad():
    for module in net.modules():
      if isinstance(module, torch.nn.BatchNorm2d):
        module.weight.uniform_(0.5, 1.5)
        module.bias.normal_(0, 0.2)
        module.running_mean.normal_(0, 0.2)
        module.running_var.uniform_(0.5, 2.0)
  net.eval()
  sd = net.state_dict()
  if not imagenet_stem:
    sd = type(sd)((kuangliu_names(name), value) for name, value in sd.items())
  path = tmp_path / 'resnet.pth'
  torch.save(sd, path, _use_new_zipfile_serialization=not legacy)

  model = create_model(model_name, num_classes=10)
  variables = load_pytorch_weights(path, abstract_variables(model))
  images = np.random.default_rng(11).normal(size=(2, 3, size, size)).astype(np.float32)
  with torch.no_grad():
    expected = net(torch.from_numpy(images)).numpy()
  logits = model.apply(variables, images.transpose(0, 2, 3, 1), train=False)
  np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
