"""Zagoruyko & Komodakis (2016) WRN-28-10 on CIFAR-10 with dropout 0.3 between the convs.

  python train.py --config configs/recipes/wrn28_10_dropout_cifar10.py --workdir runs/wrn28_10_dropout_cifar10

Source: Zagoruyko & Komodakis, "Wide Residual Networks" (BMVC 2016) and the official code: the
recipe of configs/recipes/wrn28_10_cifar10.py with dropout (p = 0.3) between the two 3x3 convs
of every block.

Target: 3.89% test error (96.11% accuracy), the WRN README (median of 5 runs; docs/reference.md).
Status: not yet run with this code. The reference gives no GPU time.

Schedule and the differences from the source: as in configs/recipes/wrn28_10_cifar10.py.
"""

from configs.recipes import wrn28_10_cifar10


def get_config():
  config = wrn28_10_cifar10.get_config()
  config.model.dropout_rate = 0.3  # the paper's dropout between the convs
  return config
