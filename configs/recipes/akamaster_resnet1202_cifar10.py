"""akamaster's ResNet-1202 on CIFAR-10: the 200-epoch recipe with one warm-up epoch at lr 0.01.

  python train.py --config configs/recipes/akamaster_resnet1202_cifar10.py --workdir runs/akamaster_resnet1202_cifar10

Source: github.com/akamaster/pytorch_resnet_cifar10 (trainer.py, --arch resnet1202): for resnet110
and resnet1202 the lr is 0.01 for the first epoch, standing in for He et al.'s 400-iteration
warm-up, then 0.1, divided by 10 at epochs 100 and 150.

Target: 6.18% test error (93.82% accuracy), akamaster's README (He et al.'s paper: 7.93%;
docs/reference.md). Status: not yet run with this code. The reference gives no GPU time.

Schedule: 390 steps per epoch (50,000 // 128); lr 0.01 for steps 0-389, 0.1 from step 390, 0.01
from 39,000 (epoch 100), 0.001 from 58,500 (epoch 150), to 78,000 (200 epochs). The 'he2016'
schedule expresses this in steps: its milestones are absolute steps, so they assume batch 128.

Differs from the source: as in configs/recipes/akamaster_resnet20_cifar10.py.

Its 600 blocks are scanned per stage and their BatchNorms and ReLUs recomputed in the backward
pass by default (model.scan_blocks and model.remat_blocks 'auto': training/layout.py); unrolled,
it compiles for many minutes. --config.model.remat_blocks=on trades more recomputation for far
less memory (benchmarks/depth.md has both).
"""

from configs.recipes import akamaster_resnet110_cifar10


def get_config():
  config = akamaster_resnet110_cifar10.get_config()  # the same warm-up and schedule
  config.model.name = 'resnet1202'
  return config
