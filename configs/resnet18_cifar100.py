"""Tutorial net (d): the Keras lesson's ResNet-18 on CIFAR-100; Adam 1e-3, batch 256, 50 epochs.

The lesson's own net (`keras_resnet18`: Keras's biased glorot-uniform Conv2Ds with TF's 'same'
pads, a 'valid' stem conv and a 2x2 stride-1 max-pool, 1x1 projections without BN), Keras's
BatchNorm (momentum 0.99, eps 1e-3, biased running variance) and Adam (eps 1e-7 added to
sqrt(v) before bias correction), inputs scaled to [-1, 1], no augmentation. Checked step for
step against the lesson's code run with real Keras (docs/fidelity.md).

  python train.py --config configs/resnet18_cifar100.py --workdir runs/resnet18_cifar100
  (ResNet-34: configs/resnet34_cifar100.py)

Expected: no published number comes with this lesson. Status: not yet run with this code.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.name = 'keras_resnet18'  # the lesson's own net (models/tutorial_nets.py)
  config.model.bn_momentum = 0.99  # Keras's BatchNormalization defaults
  config.model.bn_epsilon = 1e-3
  config.model.bn_running_var = 'biased'
  config.data.dataset = 'cifar100'
  config.data.mean = (0.5, 0.5, 0.5)  # 2 * x / 255 - 1: the lesson's preprocess
  config.data.std = (0.5, 0.5, 0.5)
  config.augment.crop_padding = 0  # the lesson augments nothing
  config.augment.flip = False
  config.batch_size = 256
  config.num_epochs = 50
  config.optim.optimizer = 'adam'
  config.optim.learning_rate = 1e-3
  config.optim.schedule = 'constant'
  config.optim.weight_decay = 0.0
  config.optim.adam_eps = 1e-7  # Keras's Adam
  config.optim.adam_eps_placement = 'raw'
  return config
