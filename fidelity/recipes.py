"""The compared recipes: one reference trainer and one of our configs each, made small.

Small images, few channels and small batches keep a float64 run short; the architecture,
optimizer, loss and lr schedule are the recipe's. The schedule is compressed so that it changes
inside the compared steps: one reference "epoch" is one step (their scheduler steps once per
epoch; here once per step) and our milestones are counted in steps. Plain Python: both sides
import it.
"""

import dataclasses
import fnmatch
from typing import Any


@dataclasses.dataclass(frozen=True)
class Recipe:
  name: str
  source: str  # the reference trainer transcribed in torch_trainer.py, file and lines
  config: str  # our config module (configs/...)
  net: str  # torch_nets.NETS key
  optimizer: dict[str, Any]  # torch.optim.<optimizer_class> keyword arguments
  scheduler: tuple[str, dict[str, Any]]  # a torch.optim.lr_scheduler class and its arguments
  overrides: dict[str, Any]  # our config fields that compress the run (dotted names)
  label_smoothing: float = 0.0
  optimizer_class: str = 'SGD'
  steps_per_epoch: int = 1  # the scheduler steps at the end of each epoch of this many steps ...
  scheduler_gets_epoch: bool = False  # ... as scheduler.step(epoch) (deprecated) if True
  layout: str = 'pytorch'  # how the reference's tensors are named (names.variables)
  framework: str = 'torch'  # 'torch': torch_trainer.py under .venv-bench; 'keras': keras_trainer.py
  # biases that a BatchNorm right after cancels (params paths, fnmatch): their exact gradient is
  # 0, so each side moves them only by its rounding noise, which Adam scales up (see cancelled)
  cancelled_biases: tuple[str, ...] = ()
  image_size: int = 16
  channels: int = 3
  num_classes: int = 10
  batch_size: int = 8
  steps: int = 100


_AKAMASTER = ('akamaster/pytorch_resnet_cifar10 trainer.py lines 110-139 (CrossEntropyLoss, '
              'SGD, MultiStepLR, per-epoch lr_scheduler.step) and 186-192 (the step)')
_KUANGLIU = ('kuangliu/pytorch-cifar main.py lines 86-89 (CrossEntropyLoss, SGD, '
             'CosineAnnealingLR) and 101-105 (the step), 154 (per-epoch scheduler.step)')

_WRN = ('szagoruyko/wide-residual-networks pytorch/main.py lines 101 (SGD, momentum 0.9, '
        'weight decay), 132 (cross_entropy), 162-164 (lr x0.2 at the milestones); Nesterov '
        'and carried momentum as the paper (configs/recipes/wrn28_10_cifar10.py)')

_LESSON = ('the PyTorch ResNet lesson (tutorial seed 003), cells In [11]-[12]: train() '
           '(forward, CrossEntropyLoss, zero_grad, backward, step), Adam(lr=1e-3), '
           'StepLR(step_size=2, gamma=0.9) stepped as scheduler.step(epoch) after each epoch')

_KERAS = ('the Keras lesson (tutorial seed 004), "2.2 Practice: ResNet18" main(): GradientTape, '
          'categorical_crossentropy(from_logits=True), reduce_mean, Adam(lr=1e-3) '
          'apply_gradients; "2.1 Practice" resnet.py for the net (fidelity/keras_nets.py)')

_BIASED_CONV_BN = ('params/stem/conv/bias', 'params/*/conv1/bias', 'params/*/conv2/bias')


RECIPES = {r.name: r for r in (
    Recipe('akamaster_resnet20', _AKAMASTER, 'configs.recipes.akamaster_resnet20_cifar10',
           'akamaster_resnet20', dict(lr=0.1, momentum=0.9, weight_decay=1e-4),
           ('MultiStepLR', dict(milestones=[30, 60])),
           {'optim.milestones': (30, 60), 'optim.milestones_unit': 'steps'}),
    Recipe('kuangliu_resnet18', _KUANGLIU, 'configs.recipes.kuangliu_resnet18_cifar10',
           'kuangliu_resnet18', dict(lr=0.1, momentum=0.9, weight_decay=5e-4),
           ('CosineAnnealingLR', dict(T_max=100)), {}, batch_size=4),
    Recipe('akamaster_resnet20_label_smoothing',
           _AKAMASTER + ', with CrossEntropyLoss(label_smoothing=0.1)',
           'configs.recipes.akamaster_resnet20_cifar10', 'akamaster_resnet20',
           dict(lr=0.1, momentum=0.9, weight_decay=1e-4),
           ('MultiStepLR', dict(milestones=[30, 60])),
           {'optim.milestones': (30, 60), 'optim.milestones_unit': 'steps',
            'optim.label_smoothing': 0.1}, label_smoothing=0.1),
    Recipe('wrn16_4_nesterov', _WRN, 'configs.recipes.wrn28_10_cifar10', 'wrn16_4',
           dict(lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True),
           ('MultiStepLR', dict(milestones=[30, 60, 80], gamma=0.2)),
           {'model.name': 'wrn16_4', 'optim.milestones': (30, 60, 80),
            'optim.milestones_unit': 'steps'}, layout='ours'),
    # 10 epochs of 10 steps, as the lesson's 10 epochs; 64x64 for its 96x96 (its last stage's
    # BatchNorms then see 32 values each: over 4, float64 rounding grows to O(1) in 10 steps)
    Recipe('tutorial_resnet18_fashion_mnist', _LESSON, 'configs.resnet18_fashion_mnist',
           'tutorial_resnet18', dict(lr=1e-3), ('StepLR', dict(step_size=2, gamma=0.9)), {},
           optimizer_class='Adam', steps_per_epoch=10, scheduler_gets_epoch=True,
           layout='ours', image_size=64, channels=1, batch_size=16,
           cancelled_biases=(*_BIASED_CONV_BN, 'params/*/shortcut/conv/bias')),
    Recipe('keras_resnet18_cifar100', _KERAS, 'configs.resnet18_cifar100', 'keras_resnet18',
           dict(learning_rate=1e-3), ('constant', {}), {}, optimizer_class='Adam',
           framework='keras', layout='keras', num_classes=100,
           cancelled_biases=_BIASED_CONV_BN),
)}


def cancelled(recipe: Recipe, key: str) -> bool:
  """Whether `key` is a bias the next BatchNorm cancels: its training gradient is 0 in exact
  arithmetic, so the two sides' values differ by rounding noise alone and are compared apart."""
  return any(fnmatch.fnmatchcase(key, pattern) for pattern in recipe.cancelled_biases)


def batches(recipe: Recipe, steps: int, seed: int = 0):
  """(train images NHWC float32 [steps, batch, ...], labels [steps, batch], eval images):
  the same numbers on both sides, no augmentation."""
  import numpy as np  # both venvs have numpy
  rng = np.random.default_rng(seed)
  shape = (recipe.image_size, recipe.image_size, recipe.channels)
  images = rng.standard_normal((steps, recipe.batch_size, *shape), dtype=np.float32)
  labels = rng.integers(0, recipe.num_classes, (steps, recipe.batch_size))
  eval_images = rng.standard_normal((16, *shape), dtype=np.float32)
  return images, labels, eval_images
