"""akamaster's ResNet-20 on CIFAR-10: He et al.'s net with a 200-epoch schedule.

  python train.py --config configs/recipes/akamaster_resnet20_cifar10.py --workdir runs/akamaster_resnet20_cifar10

Source: github.com/akamaster/pytorch_resnet_cifar10 (trainer.py): SGD momentum 0.9, weight decay
1e-4 on all parameters, batch 128, lr 0.1 divided by 10 at epochs 100 and 150, 200 epochs;
random crop with 4-pixel zero padding + horizontal flip; option A shortcuts.

Target: 8.27% test error (91.73% accuracy), akamaster's README (He et al.'s paper: 8.75%;
docs/reference.md). Status: not yet run with this code. The reference gives no GPU time.

Schedule: 200 epochs of 50,000 // 128 = 390 steps (78,000 steps); lr 0.01 from step 39,000 and
0.001 from step 58,500.

Differs from the source: an epoch drops the last 80
images (PyTorch's loader ran a 391st batch of 80); akamaster's trainer evaluates on the test set
every epoch and keeps the best, so its figures may be best-epoch rather than final accuracies.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.num_epochs = 200  # akamaster's --epochs default
  config.optim.milestones = (100, 150)  # MultiStepLR(milestones=[100, 150]), in epochs
  config.data.mean = (0.485, 0.456, 0.406)  # trainer.py normalises with ImageNet's constants
  config.data.std = (0.229, 0.224, 0.225)
  return config
