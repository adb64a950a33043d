"""Tutorial net (b): a small bottleneck ResNet with BN for 96x96 inputs, on CIFAR-10 resized to 96.

5x5 stride-2 conv (32) + max-pool, two bottlenecks to 128, two to 512 (stride 2): feature maps
48x48x32, 24x24x128, 12x12x512. Momentum SGD lr 0.01 / 0.9, batch 64, as in the lesson.

  python train.py --config configs/bottleneck96_cifar10.py --workdir runs/bottleneck96_cifar10

Expected: no published number comes with this lesson. Status: not yet run with this code.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.name = 'bottleneck96'
  config.data.image_size = 96
  config.augment.crop_padding = 0
  config.augment.flip = False
  config.batch_size = 64
  config.num_epochs = 10
  config.optim.learning_rate = 0.01
  config.optim.momentum = 0.9
  config.optim.schedule = 'constant'
  config.optim.weight_decay = 0.0
  return config
