"""Foret et al. (2021) SAM, rho 0.05, on WRN-28-10 with AutoAugment + cutout, CIFAR-10.

  python train.py --config configs/recipes/sam_wrn28_10_cifar10.py --workdir runs/sam_wrn28_10_cifar10

Source: Foret, Kleiner, Mobahi, Neyshabur, "Sharpness-Aware Minimization for Efficiently
Improving Generalization" (ICLR 2021) and its code, github.com/google-research/sam at dae9904
(docs/reference.md). The README's command (README.md lines 31-33): `--dataset cifar10
--model_name WideResnet28x10 --image_level_augmentations autoaugment --num_epochs 1800
--sam_rho 0.05`; the rest are the flags' defaults: batch 128 (sam_jax/train.py lines 46-47),
lr 0.1 with a cosine decay to 0 over the run, no warm-up (training_utils/flax_training.py lines
46, 57, 377-396), SGD with Nesterov momentum 0.9 (lines 218-220), weight decay 1e-3 as
0.5 * wd * |w|^2 in the loss on every parameter, BN and biases included (lines 51, 74, 515-522),
the gradient's global norm clipped to 5.0 after the cross-device mean (lines 45, 564-567), no
label smoothing, no EMA (lines 72-73); per-replica perturbations (sync_perturbations False, line
84) and per-replica BatchNorm statistics, momentum 0.9, epsilon 1e-5 (models/utils.py lines
28-51). Augmentation (datasets/dataset_source.py lines 87-126, datasets/augmentation.py): the
CIFAR policy, then flip and a 4-pixel reflect pad + crop (lines 33-57), then normalisation with
the CIFAR-10 mean/std (dataset_source.py lines 210-211, those of docs/reference.md), then the
code's cutout (augmentation.py lines 28, 81-138: 16 pixels, zeros, one square position for the
whole batch).

Target: none stated here. The SAM error for WRN-28-10 + AutoAugment is in the paper's Table 1,
which could not be read for this recipe; the README at dae9904 gives no CIFAR number. For scale
(not SAM): the same code's README at its first commit (1c8af51) reports 2.4% mean test error over 5
runs for WRN-28-10 + AutoAugment trained with plain SGD (batch 256, 200 epochs, lr grid-searched,
wd 5e-4), against Cubuk et al.'s 2.6% (docs/reference.md). Status: not yet run with this code.

Schedule: 1,800 epochs of 50,000 // 128 = 390 steps (702,000 steps, each two forward/backward
passes); lr 0.1 * (1 + cos(pi t / T)) / 2, 0.05 halfway (step 351,000), 0 at the end, as flax's
create_cosine_learning_rate_schedule evaluates it every step. sam_jax/train.py's own default is
200 epochs (line 44): --config.num_epochs=200 for that length.

Perturbation: with parallel.batch_norm='per_device' each device normalises its own share's
gradient over all its parameters, perturbs its own copy of the weights and takes the gradient
there with its own BN statistics; the devices then average (m-sharpness with m = 128 / devices,
as the SAM code on several replicas; m = 128 on one device). Both passes run BN in train mode on
the batch's statistics and the running statistics are updated from the unperturbed pass only, in
both codes.

Differs from the source:
- Weight decay stays out of the ascent: here the perturbation is rho * g / |g| with g the
  cross-entropy gradient alone, and the decay added to the descent gradient is wd * w at the
  unperturbed weights; in the SAM code the L2 term is part of the loss, so g includes wd * w and
  the descent gradient is taken at w + e, decay included (wd * (w + e)). No config field changes
  this (optax.contrib.sam wraps the decaying optimizer).
- Clipping to 5.0 applies to the averaged cross-entropy gradient before the decay is added; the
  SAM code clips the sum of both.
- The policy is torchvision's AutoAugmentPolicy.CIFAR10 (25 sub-policies) on uint8 images after
  the crop and flip; the SAM code draws from 95 sub-policies (autoaugment/policies.py,
  policy_cifar: the AutoAugment code's exp0-exp2 lists) with TF ops, before flip and crop.
- The model is Zagoruyko & Komodakis's WRN-28-10 (1x1 conv projections where the width changes,
  36,479,194 parameters); the SAM code's WideResnet28x10 (models/wide_resnet.py) adds the input,
  average-pooled and zero-padded, in those places instead, and initialises convs with fan-out
  Kaiming normal.
- Cutout: the README's command leaves --batch_level_augmentations at its default 'none'
  (sam_jax/train.py line 64); this recipe turns the code's cutout on, as Cubuk et al.'s
  AutoAugment setting keeps it and the SAM code's CIFAR pipeline "mimics the one from the
  autoaugment paper" (README at 1c8af51). --config.augment.cutout=0 runs the command as written.
- With one device the perturbation and BN use all 128 images; the device count behind the paper's
  numbers is not given in the files read. An epoch drops the last 80 images, as there.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.name = 'wrn28_10'
  config.model.bn_running_var = 'biased'  # flax's nn.BatchNorm (eval only)
  config.num_epochs = 1800  # the README's --num_epochs 1800
  config.optim.nesterov = True  # flax optim.Momentum(beta=0.9, nesterov=True)
  config.optim.weight_decay = 1e-3  # the --weight_decay default, L2 on every parameter
  config.optim.schedule = 'cosine'  # --lr_schedule cosine, no warm-up
  config.optim.clip_grad_norm = 5.0  # --gradient_clipping 5.0
  config.optim.sam_rho = 0.05  # the README's --sam_rho 0.05
  config.parallel.batch_norm = 'per_device'  # per-replica BN and per-replica perturbation
  config.augment.crop_mode = 'reflect'  # tf.pad(..., mode='REFLECT') before the crop
  config.augment.policy = 'autoaugment_cifar10'  # --image_level_augmentations autoaugment
  config.augment.cutout = 16  # --batch_level_augmentations cutout, --cutout_length 16
  config.augment.cutout_per_batch = True  # one square position per batch, as its cutout draws it
  return config
