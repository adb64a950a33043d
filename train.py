"""Trains a ResNet from a config file (the same as the `resnet-flax-train` console script).

  python train.py --config configs/digits.py --workdir runs/digits [--config.num_epochs=5 ...]

Rerunning the same command on the same workdir resumes from its newest checkpoint.
"""

from resnet_flax.training import startup_signals

startup_signals.install()  # first: a SIGTERM/SIGINT during start-up stops cleanly, exit 0

from resnet_flax import train_cli  # noqa: E402  pylint: disable=wrong-import-position

if __name__ == '__main__':
  train_cli.run()
