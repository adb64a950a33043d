"""ResNet-20 on scikit-learn's handwritten digits: the offline end-to-end run.

1,437 train / 360 test images, 8x8 upscaled to 32x32, 1 channel. No download needed.

  python train.py --config configs/digits.py --workdir runs/digits
  (or: make train CONFIG=configs/digits.py)

Expected: >= 97% test accuracy in a few minutes on 2 CPU cores.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.data.dataset = 'digits'
  config.augment.flip = False  # mirrored digits are other digits
  config.batch_size = 64
  config.eval_batch_size = 120
  config.num_epochs = 15
  config.optim.schedule = 'cosine'
  config.optim.learning_rate = 0.05
  config.optim.weight_decay = 5e-4
  config.log_every_steps = 20
  return config
