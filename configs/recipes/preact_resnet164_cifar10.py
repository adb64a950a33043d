"""He et al. (2016b) pre-activation ResNet-164 (bottleneck) on CIFAR-10.

  python train.py --config configs/recipes/preact_resnet164_cifar10.py --workdir runs/preact_resnet164_cifar10

Source: He, Zhang, Ren, Sun, "Identity Mappings in Deep Residual Networks" (ECCV 2016): the CIFAR
recipe of "Deep Residual Learning" (batch 128, lr 0.1 divided by 10 at 32k and 48k iterations,
stop at 64k, weight decay 1e-4, momentum 0.9, translation + flip augmentation) with lr 0.01 for
the first 400 iterations for every CIFAR net; full pre-activation bottleneck units.

Target: 5.46% test error (94.54% accuracy) (He et al. 2016b; the WRN README lists the same figure
with mean/std normalisation; docs/reference.md). Status: not yet run with this code. The reference
gives no GPU time.

Schedule: lr 0.01 for steps 0-399, 0.1 from 400, 0.01 from 32,000, 0.001 from 48,000, to 64,000
(the paper's 64k iterations of 128: 164.1 epochs of 50,000 // 128 = 390 steps).

Differs from the source: per-channel mean/std normalisation (the authors' Torch code,
KaimingHe/resnet-1k-layers on fb.resnet.torch, does this; the paper does not say); BatchNorm over
the whole batch of 128 (the paper: "128 on 2 GPUs (64 each)"; `--config.parallel.batch_norm=
per_device` on two devices does that).
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.name = 'preact_resnet164'
  config.optim.schedule = 'he2016'  # lr / 10 at exactly 32k and 48k iterations (the defaults)
  config.optim.he_warmup_steps = 400  # "0.01 at the beginning 400 iterations", then 0.1
  config.num_steps = 64_000  # the paper's 64k iterations
  return config
