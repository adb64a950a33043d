"""akamaster's ResNet-56 on CIFAR-10: ResNet-20's 200-epoch recipe with a deeper net.

  python train.py --config configs/recipes/akamaster_resnet56_cifar10.py --workdir runs/akamaster_resnet56_cifar10

Source: github.com/akamaster/pytorch_resnet_cifar10 (trainer.py, --arch resnet56).

Target: 6.61% test error (93.39% accuracy), akamaster's README (He et al.'s paper: 6.97%;
docs/reference.md). Status: not yet run with this code. The reference gives no GPU time.

Schedule and the differences from the source: as in configs/recipes/akamaster_resnet20_cifar10.py.
"""

from configs.recipes import akamaster_resnet20_cifar10


def get_config():
  config = akamaster_resnet20_cifar10.get_config()
  config.model.name = 'resnet56'
  return config
