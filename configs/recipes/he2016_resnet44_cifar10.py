"""He et al. (2016) ResNet-44 on CIFAR-10: ResNet-20's recipe with a deeper net.

  python train.py --config configs/recipes/he2016_resnet44_cifar10.py --workdir runs/he2016_resnet44_cifar10

Source: He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016), section 4.2.

Target: 7.17% test error (92.83% accuracy), the paper's Table 6; akamaster's 200-epoch re-run
reaches 6.90% (docs/reference.md). Status: not yet run with this code. The reference gives no GPU
time.

Schedule (64k iterations as 164 epochs of 390 steps) and the differences from the paper: as in
configs/recipes/he2016_resnet20_cifar10.py.
"""

from configs.recipes import he2016_resnet20_cifar10


def get_config():
  config = he2016_resnet20_cifar10.get_config()
  config.model.name = 'resnet44'  # option A shortcuts, as in the paper
  return config
