"""`python -m resnet_flax.models --list` or `--summary NAME`: the model zoo from the shell."""

import argparse

import sys

from resnet_flax.errors import UserError
from resnet_flax.models import create_model, list_models, summarize


def main() -> None:
  parser = argparse.ArgumentParser(prog='python -m resnet_flax.models', description=__doc__)
  parser.add_argument('--list', action='store_true', help='print the registered model names')
  parser.add_argument('--summary', metavar='NAME', help='per-stage shapes, params and MACs')
  parser.add_argument('--num-classes', type=int, default=10)
  parser.add_argument('--image-size', type=int, default=32)
  parser.add_argument('--channels', type=int, default=3)
  args = parser.parse_args()
  if args.list:
    print('\n'.join(list_models()))
  elif args.summary:
    try:
      model = create_model(args.summary, num_classes=args.num_classes)
    except UserError as e:
      sys.exit(f'error: {e}')
    shape = (args.image_size, args.image_size, args.channels)
    print(summarize(model, shape).table(f'{args.summary}, {args.num_classes} classes, input '
                                        f'{"x".join(map(str, shape))}'))
  else:
    parser.print_help()


if __name__ == '__main__':
  main()
