"""Trains a ResNet from a config file (the same as the `resnet-flax-train` console script).

  python train.py --config configs/digits.py --workdir runs/digits [--config.num_epochs=5 ...]

Rerunning the same command on the same workdir resumes from its newest checkpoint.
"""

from resnet_flax import train_cli

if __name__ == '__main__':
  train_cli.run()
