"""Zagoruyko & Komodakis (2016) WRN-28-10 on CIFAR-10, without dropout.

  python train.py --config configs/recipes/wrn28_10_cifar10.py --workdir runs/wrn28_10_cifar10

Source: Zagoruyko & Komodakis, "Wide Residual Networks" (BMVC 2016) and its official code
(github.com/szagoruyko/wide-residual-networks): SGD with Nesterov momentum 0.9, lr 0.1, weight
decay 5e-4, batch 128, 200 epochs, lr x0.2 at epochs 60, 120 and 160; mean/std normalisation;
4-pixel reflect pad + random crop + horizontal flip.

Target: 4.00% test error (96.00% accuracy), the WRN README (median of 5 runs, mean/std
normalisation; docs/reference.md). Status: not yet run with this code. The reference gives no GPU
time.

Schedule: 200 epochs of 50,000 // 128 = 390 steps (78,000 steps); lr 0.02 from step 23,400,
0.004 from 46,800, 0.0008 from 62,400.

Differs from the source: the official PyTorch port restarts SGD (dropping the momentum buffer) at
each milestone and uses plain momentum; here the momentum carries over and is Nesterov, as the
paper says. An epoch drops the last 80 images.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.name = 'wrn28_10'
  config.augment.crop_mode = 'reflect'  # the official code pads with T.Pad(4, 'reflect')
  config.num_epochs = 200
  config.optim.nesterov = True  # the paper: SGD with Nesterov momentum
  config.optim.weight_decay = 5e-4  # WRN's decay, 5x He et al.'s
  config.optim.milestones = (60, 120, 160)  # epochs
  config.optim.decay_factor = 0.2  # the paper's lr_decay_ratio
  return config
