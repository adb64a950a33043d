"""kuangliu's PreActResNet18 on CIFAR-10 with the cosine-200 recipe.

  python train.py --config configs/recipes/kuangliu_preact_resnet18_cifar10.py --workdir runs/kuangliu_preact_resnet18_cifar10

Source: github.com/kuangliu/pytorch-cifar (main.py and models/preact_resnet.py): the recipe of
configs/recipes/kuangliu_resnet18_cifar10.py with pre-activation basic blocks.

Target: 95.11% test accuracy, the kuangliu README (docs/reference.md). Status: not yet run with this
code. The reference gives no GPU time for this net.

Schedule and the differences from the source: as in configs/recipes/kuangliu_resnet18_cifar10.py.
"""

from configs.recipes import kuangliu_resnet18_cifar10


def get_config():
  config = kuangliu_resnet18_cifar10.get_config()
  config.model.name = 'preact_resnet18'
  return config
