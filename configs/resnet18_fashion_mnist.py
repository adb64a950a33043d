"""Tutorial net (c): the PyTorch lesson's ResNet-18 on 1-channel Fashion-MNIST resized to 96x96.

Adam 1e-3, lr x0.9 every 2 epochs from the end of the first, batch 256, 10 epochs, no
augmentation (the PyTorch lesson's recipe). Its ResNet-18 is not torchvision's
(`tutorial_resnet18`: biased convs, no ReLU inside the blocks, 3x3 projections); its
`scheduler.step(epoch)` after each epoch first decays the lr after the third epoch, not the
second. Both are checked step for step against the lesson's code (docs/fidelity.md).

  python train.py --config configs/resnet18_fashion_mnist.py --workdir runs/resnet18_fashion_mnist

Expected: about 91.8% test accuracy (what the PyTorch lesson reports). Status: not yet run with
this code.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.name = 'tutorial_resnet18'  # the lesson's own ResNet-18 (models/tutorial_nets.py)
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
  config.optim.decay_every_epochs = 2.0  # StepLR(step_size=2, gamma=0.9) ...
  config.optim.decay_begin_epochs = 1.0  # ... stepped as scheduler.step(epoch) after each epoch
  config.optim.weight_decay = 0.0
  return config
