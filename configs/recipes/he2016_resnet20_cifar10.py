"""He et al. (2016) ResNet-20 on CIFAR-10 with the paper's iteration schedule.

  python train.py --config configs/recipes/he2016_resnet20_cifar10.py --workdir runs/he2016_resnet20_cifar10

Source: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition" (CVPR 2016), section
4.2: SGD momentum 0.9, weight decay 1e-4, batch 128, lr 0.1 divided by 10 at 32k and 48k
iterations, stop at 64k; 4-pixel zero pad + random 32x32 crop + horizontal flip; per-pixel mean
subtracted; option A shortcuts.

Target: 8.75% test error (91.25% accuracy), the paper's Table 6; akamaster's 200-epoch re-run
reaches 8.27% (docs/reference.md). Status: not yet run with this code. The reference gives no GPU
time.

Length: exactly the paper's 64,000 iterations (`num_steps`; an epoch is 50,000 // 128 = 390 steps,
the 80 images left over dropped and reshuffled into the next epoch, so 164.1 epochs). The lr drops
at exactly 32,000 and 48,000 steps (epochs 82.05 and 123.08), where configs/default.py rounds them
to epochs 82 and 123.

Differs from the paper: BatchNorm statistics are taken over the whole batch of 128 (the paper
split it over two GPUs, 64 each; `--config.parallel.batch_norm=per_device` on two devices does
that), and the mean-subtracted input is also divided by the per-channel std (a fixed scale).
"""

from configs import default


def get_config():
  config = default.get_config()
  config.data.normalization = 'per_pixel_mean'  # the paper subtracts the per-pixel mean image
  config.optim.schedule = 'he2016'  # lr / 10 at exactly 32k and 48k iterations (the default
  #   he_milestones_steps), not at epoch boundaries
  config.num_steps = 64_000  # the paper's 64k iterations of 128 images
  return config
