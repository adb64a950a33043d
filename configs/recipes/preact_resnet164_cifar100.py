"""He et al. (2016b) pre-activation ResNet-164 (bottleneck) on CIFAR-100.

  python train.py --config configs/recipes/preact_resnet164_cifar100.py --workdir runs/preact_resnet164_cifar100

Source: He et al., "Identity Mappings in Deep Residual Networks" (ECCV 2016): the CIFAR-10 recipe
unchanged (configs/recipes/preact_resnet164_cifar10.py).

Target: 24.33% test error (75.67% accuracy) (He et al. 2016b; the WRN README lists the same figure;
docs/reference.md). Status: not yet run with this code. The reference gives no GPU time.

Schedule and the differences from the source: as in configs/recipes/preact_resnet164_cifar10.py;
the inputs are normalised with the CIFAR-100 mean/std.
"""

from configs.recipes import preact_resnet164_cifar10


def get_config():
  config = preact_resnet164_cifar10.get_config()
  config.data.dataset = 'cifar100'  # the 100 fine labels
  return config
