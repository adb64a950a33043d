"""Zagoruyko & Komodakis (2016) WRN-28-10 on CIFAR-100, without dropout.

  python train.py --config configs/recipes/wrn28_10_cifar100.py --workdir runs/wrn28_10_cifar100

Source: Zagoruyko & Komodakis, "Wide Residual Networks" (BMVC 2016) and the official code: the
CIFAR-10 recipe unchanged (configs/recipes/wrn28_10_cifar10.py).

Target: 19.25% test error (80.75% accuracy), the WRN README (median of 5 runs; docs/reference.md).
Status: not yet run with this code. The reference gives no GPU time.

Schedule and the differences from the source: as in configs/recipes/wrn28_10_cifar10.py; also,
the inputs are normalised with the CIFAR-100 mean/std, where the official code uses CIFAR-10's
for both datasets.
"""

from configs.recipes import wrn28_10_cifar10


def get_config():
  config = wrn28_10_cifar10.get_config()
  config.data.dataset = 'cifar100'  # the 100 fine labels
  return config
