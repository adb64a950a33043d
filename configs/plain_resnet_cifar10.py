"""Tutorial net (a): a plain residual net without BatchNorm on CIFAR-10, as Keras lessons build it.

3x3 conv stem (32) + ReLU; stages [2, 3, 3, 2] at 32/64/128/256; two biased 3x3 convs per
block; average-pool + zero-pad shortcuts. Adam 1e-3, batch 20, no augmentation (as in the lesson).

  python train.py --config configs/plain_resnet_cifar10.py --workdir runs/plain_resnet_cifar10

Expected: no published number comes with this lesson. Status: not yet run with this code.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.name = 'plain_resnet'
  config.augment.crop_padding = 0
  config.augment.flip = False
  config.batch_size = 20
  config.num_epochs = 20
  config.optim.optimizer = 'adam'
  config.optim.learning_rate = 1e-3
  config.optim.schedule = 'constant'
  config.optim.weight_decay = 0.0
  return config
