"""`python -m resnet_flax.models --list`: the registered model names."""

import argparse

from resnet_flax.models import list_models


def main() -> None:
  parser = argparse.ArgumentParser(prog='python -m resnet_flax.models', description=__doc__)
  parser.add_argument('--list', action='store_true', help='print the registered model names')
  args = parser.parse_args()
  if args.list:
    print('\n'.join(list_models()))
  else:
    parser.print_help()


if __name__ == '__main__':
  main()
