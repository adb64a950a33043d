"""Zagoruyko & Komodakis (2016) WRN-28-10 on CIFAR-100 with dropout 0.3 between the convs.

  python train.py --config configs/recipes/wrn28_10_dropout_cifar100.py --workdir runs/wrn28_10_dropout_cifar100

Source: Zagoruyko & Komodakis, "Wide Residual Networks" (BMVC 2016) and the official code: the
recipe of configs/recipes/wrn28_10_dropout_cifar10.py on CIFAR-100.

Target: 18.85% test error (81.15% accuracy), the WRN README (median of 5 runs; docs/reference.md).
Status: not yet run with this code. The reference gives no GPU time.

Schedule and the differences from the source: as in configs/recipes/wrn28_10_cifar100.py.
"""

from configs.recipes import wrn28_10_dropout_cifar10


def get_config():
  config = wrn28_10_dropout_cifar10.get_config()
  config.data.dataset = 'cifar100'  # the 100 fine labels
  return config
