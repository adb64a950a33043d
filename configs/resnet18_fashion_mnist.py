"""Tutorial net (c): ResNet-18 with the ImageNet stem on 1-channel Fashion-MNIST resized to 96x96.

Adam 1e-3, lr x0.9 every 2 epochs, batch 256, 10 epochs, no augmentation (the PyTorch lesson's
recipe).

  python train.py --config configs/resnet18_fashion_mnist.py --workdir runs/resnet18_fashion_mnist

Expected: about 91.8% test accuracy (what the PyTorch lesson reports). Status: not yet run with
this code.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.name = 'resnet18_imagenet'
  config.data.dataset = 'fashion_mnist'
  config.data.image_size = 96
  config.augment.crop_padding = 0
  config.augment.flip = False
  config.batch_size = 256
  config.num_epochs = 10
  config.optim.optimizer = 'adam'
  config.optim.learning_rate = 1e-3
  config.optim.schedule = 'exponential'
  config.optim.decay_factor = 0.9
  config.optim.decay_every_epochs = 2.0
  config.optim.weight_decay = 0.0
  return config
