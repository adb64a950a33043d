"""Cubuk et al. (2019) AutoAugment's CIFAR-10 policy + cutout on WRN-28-10, CIFAR-10.

  python train.py --config configs/recipes/autoaugment_wrn28_10_cifar10.py --workdir runs/autoaugment_wrn28_10_cifar10

Source: Cubuk, Zoph, Mane, Vasudevan, Le, "AutoAugment: Learning Augmentation Policies from
Data" (CVPR 2019), Table 2 and its training details for Wide-ResNet-28-10: 200 epochs, batch
128, lr 0.1 with cosine decay, weight decay 5e-4, SGD with momentum 0.9; the baseline's
4-pixel zero pad + crop + flip and 16x16 cutout, with the learned CIFAR-10 policy on top.

Target: 2.6% test error (97.4% accuracy), Table 2's AutoAugment column for WRN-28-10
(docs/reference.md): a target, not yet a result. Status: not yet run with this code.

Schedule: 200 epochs of 50,000 // 128 = 390 steps (78,000 steps); lr 0.1 * (1 + cos(pi t / T)) / 2,
0.05 halfway (step 39,000), 0 at the end.

Differs from the source: the policy is torchvision's AutoAugmentPolicy.CIFAR10 on uint8 images,
after the crop and flip (torchvision's order: crop, flip, policy, normalise, cutout); the
original code's pipeline applies the policy before pad-and-crop, flip and cutout. Nesterov is
off (the paper does not say); the cosine is evaluated every step; an epoch drops the last 80
images.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.name = 'wrn28_10'
  config.num_epochs = 200
  config.optim.weight_decay = 5e-4  # the paper's WRN-28-10 decay
  config.optim.schedule = 'cosine'  # cosine decay over the whole run
  config.augment.policy = 'autoaugment_cifar10'  # the learned CIFAR-10 policy
  config.augment.cutout = 16  # the baseline's 16x16 cutout, kept with AutoAugment
  return config
