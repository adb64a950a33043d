"""PyTorch's side of benchmarks/suite.py: a worker run by the bench venv's python (`make bench`).

The reference implementations our models are checked against: akamaster/pytorch_resnet_cifar10
(He et al. CIFAR ResNets, option-A shortcuts) and kuangliu/pytorch-cifar's ResNet-18 (3x3/1
stem, no max-pool, 1x1 conv + BN projections). Eager mode, float32 (a name ending in
protocol.BF16: under bfloat16 autocast, PyTorch's mixed precision), channels_last, one thread
per core, SGD momentum 0.9 with weight decay 1e-4 as configs/default.py. Never imports
resnet_flax: the two sides share only this protocol.
"""

import os
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import protocol

NUM_CLASSES = 10
_S: dict[str, Any] = {}


class CifarBlock(nn.Module):
  """akamaster's BasicBlock; option A: subsample, zero-pad channels by planes // 4 on each side."""

  def __init__(self, in_planes: int, planes: int, stride: int):
    super().__init__()
    self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.pad = planes // 4 if stride != 1 or in_planes != planes else 0

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    out = F.relu(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    if self.pad:
      x = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad), 'constant', 0)
    return F.relu(out + x)


class CifarResNet(nn.Module):
  """He et al. (2016) CIFAR ResNet of depth 6n+2: 16/32/64 channels, global pool, linear."""

  def __init__(self, depth: int):
    super().__init__()
    n = (depth - 2) // 6
    self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
    self.bn1 = nn.BatchNorm2d(16)
    blocks, in_planes = [], 16
    for planes, stride in ((16, 1), (32, 2), (64, 2)):
      for s in [stride] + [1] * (n - 1):
        blocks.append(CifarBlock(in_planes, planes, s))
        in_planes = planes
    self.layers = nn.Sequential(*blocks)
    self.linear = nn.Linear(64, NUM_CLASSES)
    for m in self.modules():
      if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    out = self.layers(F.relu(self.bn1(self.conv1(x))))
    return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


class KuangliuBlock(nn.Module):
  """kuangliu's BasicBlock: a 1x1 conv + BN shortcut where the shape changes."""

  def __init__(self, in_planes: int, planes: int, stride: int):
    super().__init__()
    self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.shortcut = nn.Sequential()
    if stride != 1 or in_planes != planes:
      self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                    nn.BatchNorm2d(planes))

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    out = F.relu(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    return F.relu(out + self.shortcut(x))


class KuangliuResNet18(nn.Module):
  """kuangliu/pytorch-cifar ResNet-18: CIFAR stem, 64..512 channels, 2 blocks per stage."""

  def __init__(self):
    super().__init__()
    self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    blocks, in_planes = [], 64
    for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
      for s in (stride, 1):
        blocks.append(KuangliuBlock(in_planes, planes, s))
        in_planes = planes
    self.layers = nn.Sequential(*blocks)
    self.linear = nn.Linear(512, NUM_CLASSES)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    out = self.layers(F.relu(self.bn1(self.conv1(x))))
    return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


MODELS = {'resnet20': lambda: CifarResNet(20), 'resnet56': lambda: CifarResNet(56),
          'resnet110': lambda: CifarResNet(110), 'resnet1202': lambda: CifarResNet(1202),
          'resnet18': KuangliuResNet18}


def _timed(fn) -> float:
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def setup(model: str, batch: int) -> dict[str, Any]:
  """Builds the model, optimizer and one fixed batch (channels_last); returns the parameter count."""
  torch.manual_seed(0)
  net = MODELS[protocol.base_name(model)]().to(memory_format=torch.channels_last)
  _S['bf16'] = model.endswith(protocol.BF16)
  opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
  images = torch.randn(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
  labels = torch.randint(0, NUM_CLASSES, (batch,))
  _S.update(net=net, opt=opt, images=images, labels=labels)
  return {'params': sum(p.numel() for p in net.parameters()), 'threads': torch.get_num_threads()}


def _autocast() -> torch.autocast:
  """bfloat16 mixed precision for the `_bf16` models (as the docs apply it: forward and loss)."""
  return torch.autocast('cpu', dtype=torch.bfloat16, enabled=_S['bf16'])


def train(steps: int) -> dict[str, float]:
  """`steps` train-mode SGD steps (forward, backward, update) on the same batch."""
  net, opt = _S['net'], _S['opt']
  net.train()

  def run():
    for _ in range(steps):
      opt.zero_grad(set_to_none=True)
      with _autocast():
        loss = F.cross_entropy(net(_S['images']), _S['labels'])
      loss.backward()
      opt.step()
    loss.item()
  return {'seconds': _timed(run)}


def evaluate(steps: int) -> dict[str, float]:
  """`steps` eval-mode forward passes with the sums evaluation needs (loss, top-1, top-5)."""
  net = _S['net']
  net.eval()

  def run():
    with torch.inference_mode(), _autocast():
      for _ in range(steps):
        logits = net(_S['images'])
        loss = F.cross_entropy(logits, _S['labels'], reduction='sum')
        correct = (logits.argmax(-1) == _S['labels']).sum()
        top5 = (logits.topk(5, -1).indices == _S['labels'][:, None]).any(-1).sum()
      (loss + correct + top5).item()
  return {'seconds': _timed(run)}


def matmul(n: int, reps: int) -> dict[str, Any]:
  """f32 (n, n) @ (n, n) GFLOP/s, one number per repetition after a warm-up."""
  a, b = torch.randn(n, n), torch.randn(n, n)
  a @ b
  times = [_timed(lambda: a @ b) for _ in range(reps)]
  return {'gflops': [2 * n**3 / t / 1e9 for t in times], 'median_s': statistics.median(times)}


def info() -> dict[str, Any]:
  return {'torch': torch.__version__, 'numpy': np.__version__, 'threads': torch.get_num_threads(),
          'python': sys.version.split()[0]}


if __name__ == '__main__':
  torch.set_num_threads(int(os.environ.get('BENCH_THREADS', len(os.sched_getaffinity(0)))))
  protocol.serve({'setup': setup, 'train': train, 'eval': evaluate, 'matmul': matmul, 'info': info})
