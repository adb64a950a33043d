"""He et al. (2016b) pre-activation ResNet-1001 (bottleneck) on CIFAR-10.

  python train.py --config configs/recipes/preact_resnet1001_cifar10.py --workdir runs/preact_resnet1001_cifar10

Source: He et al., "Identity Mappings in Deep Residual Networks" (ECCV 2016): the recipe of
configs/recipes/preact_resnet164_cifar10.py with 111 bottleneck units per stage.

Target: 4.92% test error (95.08% accuracy) with batch 128 (He et al. 2016b; the WRN README lists the
same figure; docs/reference.md). Status: not yet run with this code. The reference gives no GPU
time. The authors' Torch re-implementation (KaimingHe/resnet-1k-layers) reports 4.62% with batch 64,
which this recipe does not follow.

Schedule and the differences from the source: as in configs/recipes/preact_resnet164_cifar10.py.
Its 333 bottleneck units are scanned per stage, their BatchNorms and ReLUs recomputed in the
backward pass by default (model.scan_blocks and model.remat_blocks 'auto': training/layout.py):
unrolled, they compile for minutes.
"""

from configs.recipes import preact_resnet164_cifar10


def get_config():
  config = preact_resnet164_cifar10.get_config()
  config.model.name = 'preact_resnet1001'
  return config
