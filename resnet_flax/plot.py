"""Training curves of several runs on one figure (the library: reporting/plot.py).

  python -m resnet_flax.plot runs/a runs/b [...] [--out curves.png]
"""

from resnet_flax.errors import exit_on_user_error
from resnet_flax.reporting.plot import main

if __name__ == '__main__':
  exit_on_user_error(main)
