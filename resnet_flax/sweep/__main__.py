"""`python -m resnet_flax.sweep`: see resnet_flax/sweep/cli.py."""

from resnet_flax.errors import exit_on_user_error
from resnet_flax.sweep.cli import main

exit_on_user_error(main)
