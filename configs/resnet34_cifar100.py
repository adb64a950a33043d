"""Tutorial net (d): ResNet-34 with a 3x3 stride-1 stem on CIFAR-100; Adam 1e-3, batch 256, 50 epochs.

  python train.py --config configs/resnet34_cifar100.py --workdir runs/resnet34_cifar100

Expected: no published number comes with this lesson. Status: not yet run with this code.
"""

from configs import resnet18_cifar100


def get_config():
  config = resnet18_cifar100.get_config()
  config.model.name = 'resnet34'
  return config
