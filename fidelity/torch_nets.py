"""The reference nets in PyTorch, transcribed from their sources (run under .venv-bench only).

akamaster's and kuangliu's keep their sources' module names, so their state dicts go through our
PyTorch importer (resnet_flax/pytorch/from_pytorch.py) unchanged; the WRN code's functional net
and the lesson's nn.Sequential have no names our importer reads, so theirs are named as our
variables (fidelity/names.py), each docstring saying how.
"""

import torch
from torch import nn
from torch.nn import functional as F


class AkamasterBlock(nn.Module):
  """akamaster/pytorch_resnet_cifar10 resnet.py lines 54-84: BasicBlock, option A shortcut
  (line 71: subsample, zero-pad planes // 4 channels on each side)."""
  expansion = 1

  def __init__(self, in_planes: int, planes: int, stride: int = 1):
    super().__init__()
    self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.pad = stride != 1 or in_planes != planes
    self.planes = planes

  def forward(self, x):
    out = F.relu(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    if self.pad:
      p = self.planes // 4
      x = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, p, p), 'constant', 0)
    return F.relu(out + x)


class AkamasterResNet(nn.Module):
  """resnet.py lines 86-118: 3x3 stem of 16, three stages of 16/32/64, global average pool
  (line 114: avg_pool2d over the whole map), linear head."""

  def __init__(self, num_blocks: int, num_classes: int = 10):
    super().__init__()
    self.in_planes = 16
    self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
    self.bn1 = nn.BatchNorm2d(16)
    self.layer1 = self._make_layer(16, num_blocks, 1)
    self.layer2 = self._make_layer(32, num_blocks, 2)
    self.layer3 = self._make_layer(64, num_blocks, 2)
    self.linear = nn.Linear(64, num_classes)

  def _make_layer(self, planes, num_blocks, stride):
    layers = []
    for s in [stride] + [1] * (num_blocks - 1):
      layers.append(AkamasterBlock(self.in_planes, planes, s))
      self.in_planes = planes
    return nn.Sequential(*layers)

  def forward(self, x):
    out = F.relu(self.bn1(self.conv1(x)))
    out = self.layer3(self.layer2(self.layer1(out)))
    out = F.avg_pool2d(out, out.size()[3])
    return self.linear(out.view(out.size(0), -1))


class KuangliuBlock(nn.Module):
  """kuangliu/pytorch-cifar models/resnet.py lines 14-39: BasicBlock with a 1x1 conv + BN
  projection where the shape changes."""
  expansion = 1

  def __init__(self, in_planes: int, planes: int, stride: int = 1):
    super().__init__()
    self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.shortcut = nn.Sequential()
    if stride != 1 or in_planes != planes:
      self.shortcut = nn.Sequential(
          nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
          nn.BatchNorm2d(planes))

  def forward(self, x):
    out = F.relu(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    out += self.shortcut(x)
    return F.relu(out)


class KuangliuResNet(nn.Module):
  """models/resnet.py lines 73-108: 3x3 stride-1 stem of 64, four stages of 64..512.

  Line 101 pools with avg_pool2d(out, 4), the whole 4x4 map of a 32x32 input; here the
  whole map of whatever size comes in (the same function at 32x32), so smaller images work.
  """

  def __init__(self, num_blocks, num_classes: int = 10):
    super().__init__()
    self.in_planes = 64
    self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    self.layer1 = self._make_layer(64, num_blocks[0], 1)
    self.layer2 = self._make_layer(128, num_blocks[1], 2)
    self.layer3 = self._make_layer(256, num_blocks[2], 2)
    self.layer4 = self._make_layer(512, num_blocks[3], 2)
    self.linear = nn.Linear(512, num_classes)

  def _make_layer(self, planes, num_blocks, stride):
    layers = []
    for s in [stride] + [1] * (num_blocks - 1):
      layers.append(KuangliuBlock(self.in_planes, planes, s))
      self.in_planes = planes
    return nn.Sequential(*layers)

  def forward(self, x):
    out = F.relu(self.bn1(self.conv1(x)))
    out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
    out = F.avg_pool2d(out, out.size()[3])
    return self.linear(out.view(out.size(0), -1))


class WrnBlock(nn.Module):
  """szagoruyko/wide-residual-networks pytorch/resnet.py lines 35-43: BN-ReLU, conv (stride),
  BN-ReLU, conv; a 1x1 projection of the pre-activated input where the width changes.
  Modules are named as our variables (their bn0/conv0/bn1/conv1/convdim are our
  bn1/conv1/bn2/conv2/shortcut.conv): their functional net has no module names of its own."""

  def __init__(self, ni: int, no: int, stride: int):
    super().__init__()
    self.bn1, self.bn2 = nn.BatchNorm2d(ni), nn.BatchNorm2d(no)
    self.conv1 = nn.Conv2d(ni, no, 3, stride=stride, padding=1, bias=False)
    self.conv2 = nn.Conv2d(no, no, 3, stride=1, padding=1, bias=False)
    self.shortcut = (nn.ModuleDict({'conv': nn.Conv2d(ni, no, 1, stride=stride, bias=False)})
                     if ni != no else None)

  def forward(self, x):
    o1 = F.relu(self.bn1(x))
    y = self.conv1(o1)
    o2 = F.relu(self.bn2(y))
    z = self.conv2(o2)
    return z + (self.shortcut['conv'](o1) if self.shortcut is not None else x)


class WideResNet(nn.Module):
  """pytorch/resnet.py lines 6-61: a 3x3 conv of 16, three groups of 16k/32k/64k, BN-ReLU,
  average pool, linear. Line 56 pools 8x8 (the whole map of a 32x32 input); here the whole map."""

  def __init__(self, depth: int, width: int, num_classes: int):
    super().__init__()
    n = (depth - 4) // 6
    widths = [16 * width, 32 * width, 64 * width]
    self.stem = nn.ModuleDict({'conv': nn.Conv2d(3, 16, 3, padding=1, bias=False)})
    self.blocks = []
    ni = 16
    for g, no in enumerate(widths):
      for i in range(n):
        name = f'stage{g + 1}_block{i + 1}'
        setattr(self, name, WrnBlock(ni if i == 0 else no, no, (1 if g == 0 else 2) if i == 0 else 1))
        self.blocks.append(name)
      ni = no
    self.final_bn = nn.BatchNorm2d(widths[2])
    self.head = nn.Linear(widths[2], num_classes)

  def forward(self, x):
    o = self.stem['conv'](x)
    for name in self.blocks:
      o = getattr(self, name)(o)
    o = F.relu(self.final_bn(o))
    o = F.avg_pool2d(o, o.size()[3])
    return self.head(o.view(o.size(0), -1))


class LessonResidual(nn.Module):
  """The PyTorch ResNet lesson's `Residual` (tutorial seed 003, cells In [3]), lines kept;
  `downsample` is named `shortcut` with `conv`/`bn` children, as our variables are."""

  def __init__(self, in_channels, out_channels, stride=1):
    super().__init__()
    # main pass
    self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1)
    self.bn1 = nn.BatchNorm2d(out_channels)
    self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1)
    self.bn2 = nn.BatchNorm2d(out_channels)
    self.relu1 = nn.ReLU(inplace=True)
    # shortcut pass
    if stride != 1:
      self.shortcut = nn.ModuleDict({
          'conv': nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1),
          'bn': nn.BatchNorm2d(out_channels)})
    else:
      self.shortcut = None

  def forward(self, x):
    identity = x
    out = self.conv1(x)
    out = self.bn1(out)
    out = self.conv2(out)
    out = self.bn2(out)
    if self.shortcut is not None:
      identity = self.shortcut['bn'](self.shortcut['conv'](x))
    out += identity
    out = self.relu1(out)
    return out


class LessonResNet18(nn.Module):
  """The lesson's model (seed 003, cells In [6]-[8]): nn.Sequential(Conv2d(1, 64, 7, stride 2,
  padding 3), BatchNorm2d(64), ReLU, MaxPool2d(3, 2, padding 1)), resnet_block(64, 64, 1, 2),
  (64, 128, 2, 2), (128, 256, 2, 2), (256, 512, 2, 2), AdaptiveAvgPool2d((1, 1)), Flatten,
  Linear(512, 10); its Sequential's indices named stem.conv/stem.bn, resnet_block{s}.{i}
  stage{s}_block{i+1}, fc head."""

  def __init__(self, num_classes: int = 10):
    super().__init__()
    self.stem = nn.ModuleDict({'conv': nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3),
                               'bn': nn.BatchNorm2d(64)})
    self.pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    self.blocks = []
    for s, (cin, cout, stride) in enumerate([(64, 64, 1), (64, 128, 2), (128, 256, 2),
                                             (256, 512, 2)]):
      for i in range(2):  # resnet_block: the first Residual strides, the other does not
        name = f'stage{s + 1}_block{i + 1}'
        setattr(self, name, LessonResidual(cin if i == 0 else cout, cout, stride if i == 0 else 1))
        self.blocks.append(name)
    self.head = nn.Linear(512, num_classes)

  def forward(self, x):
    x = self.pool(F.relu(self.stem['bn'](self.stem['conv'](x))))
    for name in self.blocks:
      x = getattr(self, name)(x)
    x = F.adaptive_avg_pool2d(x, (1, 1))
    return self.head(x.view(x.shape[0], -1))


NETS = {
    'akamaster_resnet20': lambda classes: AkamasterResNet(3, classes),  # resnet.py line 120
    'kuangliu_resnet18': lambda classes: KuangliuResNet([2, 2, 2, 2], classes),  # line 107
    'wrn16_4': lambda classes: WideResNet(16, 4, classes),
    'tutorial_resnet18': LessonResNet18,
}


def create(name: str, num_classes: int) -> torch.nn.Module:
  return NETS[name](num_classes)
