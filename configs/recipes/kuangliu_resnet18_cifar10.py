"""kuangliu's ResNet-18 (CIFAR stem) on CIFAR-10 with the cosine-200 recipe.

  python train.py --config configs/recipes/kuangliu_resnet18_cifar10.py --workdir runs/kuangliu_resnet18_cifar10

Source: github.com/kuangliu/pytorch-cifar (main.py): SGD lr 0.1, momentum 0.9, weight decay 5e-4,
batch 128, CosineAnnealingLR(T_max=200) over 200 epochs; random crop with 4-pixel zero padding +
horizontal flip. ResNet18 there: 3x3 stride-1 stem, no max-pool, 1x1 conv + BN projections.

Target: about 95% test accuracy (re-runs of the cosine-200 recipe); the README's table says 93.02%,
from an older step schedule (docs/reference.md, which also lists about 7 min on one A100 for a
standard 200-epoch ResNet-18 (96%), from another codebase). Status: not yet run with this code.

Schedule: 200 epochs of 50,000 // 128 = 390 steps (78,000 steps); lr 0.1 * (1 + cos(pi t / T)) / 2,
0.05 halfway (step 39,000), 0 at the end.

Differs from the source: the cosine is evaluated every step, not once per epoch; main.py keeps the best test accuracy over
the epochs, so its figures may be best-epoch rather than final; an epoch drops the last 80 images.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.name = 'resnet18'  # kuangliu's ResNet18: CIFAR stem, option B shortcuts
  config.num_epochs = 200
  config.optim.weight_decay = 5e-4  # main.py's decay, on all parameters
  config.optim.schedule = 'cosine'  # CosineAnnealingLR(T_max=200), over the whole run
  config.data.std = (0.2023, 0.1994, 0.2010)  # main.py's (widely copied) std; the mean is CIFAR's
  config.data.mean = (0.4914, 0.4822, 0.4465)
  return config
