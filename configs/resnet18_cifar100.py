"""Tutorial net (d): ResNet-18 with a 3x3 stride-1 stem on CIFAR-100; Adam 1e-3, batch 256, 50 epochs.

  python train.py --config configs/resnet18_cifar100.py --workdir runs/resnet18_cifar100
  (ResNet-34: add --config.model.name=resnet34, or use configs/resnet34_cifar100.py)

Expected: no published number comes with this lesson. Status: not yet run with this code.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.name = 'resnet18'
  config.data.dataset = 'cifar100'
  config.batch_size = 256
  config.num_epochs = 50
  config.optim.optimizer = 'adam'
  config.optim.learning_rate = 1e-3
  config.optim.schedule = 'constant'
  config.optim.weight_decay = 0.0
  return config
