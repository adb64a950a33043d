"""Tutorial net (d): the Keras lesson's ResNet-34 on CIFAR-100, as configs/resnet18_cifar100.py.

  python train.py --config configs/resnet34_cifar100.py --workdir runs/resnet34_cifar100

Expected: no published number comes with this lesson. Status: not yet run with this code.
"""

from configs import resnet18_cifar100


def get_config():
  config = resnet18_cifar100.get_config()
  config.model.name = 'keras_resnet34'
  return config
