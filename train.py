"""Trains a ResNet from a config file.

  python train.py --config configs/digits.py --workdir runs/digits [--config.num_epochs=5 ...]

Rerunning the same command on the same workdir resumes from its newest checkpoint.
"""

from resnet_flax.training import startup_signals

startup_signals.install()  # first: a SIGTERM/SIGINT during start-up stops cleanly, exit 0

from resnet_flax.cpu import host_memory  # noqa: E402  pylint: disable=wrong-import-position

host_memory.keep_freed_memory()  # before TensorFlow's and JAX's threads exist: see host_memory

# pylint: disable=wrong-import-position
from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from resnet_flax.errors import UserError, fail  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    'config', 'configs/default.py', 'Config file; override fields with --config.a.b=value.',
    lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints and metrics.')
flags.mark_flag_as_required('workdir')


def parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing that turns a bad --config override into one clear paragraph."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    fail(f'{str(e).rstrip(".")}. Run `python train.py --helpfull` for the flags.')
  except (KeyError, AttributeError) as e:  # ml_collections: an override names no config field
    from resnet_flax.training import config_help  # pylint: disable=g-import-not-at-top
    fail(config_help.unknown_override_message(argv, e))


def main(argv: list[str]) -> None:
  del argv
  if not flags.FLAGS['verbosity'].present:  # orbax and jax log every save at INFO
    logging.set_verbosity(logging.WARNING)
  from resnet_flax.training import config_help  # pylint: disable=g-import-not-at-top
  config = config_help.loaded_config(_CONFIG)
  from resnet_flax import train_and_evaluate  # pylint: disable=g-import-not-at-top
  try:
    train_and_evaluate(config, _WORKDIR.value)
  except UserError as e:
    fail(str(e))


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
