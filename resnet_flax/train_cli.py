"""The training command line: `resnet-flax-train` (console script) and `python train.py`.

  resnet-flax-train --config configs/digits.py --workdir runs/digits [--config.num_epochs=5 ...]

`--config` defaults to configs/default.py of the working directory, else of the checkout this
package is installed from (an editable install); the configs are not part of a wheel, so a
wheel install passes --config. The checkout's root is put on sys.path, so config files that
import `configs.default` load from any working directory. Rerunning the same command on the
same workdir resumes from its newest checkpoint.
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from resnet_flax.errors import UserError, fail
from resnet_flax.training import startup_signals

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join('configs', 'default.py')


def default_config_path() -> str:
  """configs/default.py here, else in the checkout of an editable install; else the relative
  path, which fails with absl's own 'could not load' message naming it."""
  for root in (os.getcwd(), CHECKOUT):
    path = os.path.join(root, DEFAULT_CONFIG)
    if os.path.exists(path):
      return path
  return DEFAULT_CONFIG


_CONFIG = config_flags.DEFINE_config_file(
    'config', default_config_path(), 'Config file; override fields with --config.a.b=value.',
    lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints and metrics.')
flags.mark_flag_as_required('workdir')


def parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing that turns a bad --config override into one clear paragraph."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    fail(f'{str(e).rstrip(".")}. Run `{os.path.basename(argv[0])} --helpfull` for the flags.')
  except (KeyError, AttributeError) as e:  # ml_collections: an override names no config field
    from resnet_flax.training import config_help  # pylint: disable=g-import-not-at-top
    fail(config_help.unknown_override_message(argv, e))


def main(argv: list[str]) -> None:
  del argv
  if not flags.FLAGS['verbosity'].present:  # orbax and jax log every save at INFO
    logging.set_verbosity(logging.WARNING)
  from resnet_flax.training import config_help  # pylint: disable=g-import-not-at-top
  config = config_help.loaded_config(_CONFIG)
  from resnet_flax.cpu import host_memory  # pylint: disable=g-import-not-at-top
  host_memory.tune_for_cli(config)  # before JAX's threads exist: see host_memory
  from resnet_flax import train_and_evaluate  # pylint: disable=g-import-not-at-top
  try:
    train_and_evaluate(config, _WORKDIR.value)
  except UserError as e:
    fail(str(e))


def run() -> None:
  """The console script's entry point (train.py calls it too)."""
  startup_signals.install()  # a SIGTERM/SIGINT during start-up stops cleanly, exit 0
  if os.path.isdir(os.path.join(CHECKOUT, 'configs')) and CHECKOUT not in sys.path:
    sys.path.append(CHECKOUT)  # `from configs import default` inside config files
  app.run(main, flags_parser=parse_flags)
