"""`python -m fidelity [RECIPE ...] [--steps N] [--dtypes float64 float32] [--set FIELD=VALUE]
[--json PATH] [--torch-python PATH]` (`make parity`): every recipe (or those named) on both
sides, the table of docs/fidelity.md on stdout; exits non-zero where a float64 difference
exceeds 1e-9."""

import argparse
import ast
import dataclasses
import json
import time

import jax

jax.config.update('jax_enable_x64', True)  # before any array exists: float64 needs it

from fidelity import parity, recipes  # noqa: E402

FLOAT64_TOLERANCE = 1e-9
CANCELLED_MOVE = 1e-6  # how far rounding noise may move a BatchNorm-cancelled bias (absolute)
KINDS = ('loss', 'params', 'running_stats', 'logits', 'lr')
GROWTH_STEPS = (1, 10, 30, 60, 100)  # float32: the loss difference at these steps


def _override(text: str) -> tuple[str, object]:
  key, _, value = text.partition('=')
  try:
    return key, ast.literal_eval(value)
  except (ValueError, SyntaxError):
    return key, value


def agrees(differences: dict) -> bool:
  """Whether a float64 run agrees: every kind to FLOAT64_TOLERANCE, and the biases a BatchNorm
  cancels moved by no more than rounding noise on either side."""
  return (max(differences[k] for k in KINDS) <= FLOAT64_TOLERANCE
          and differences['cancelled_moved'] <= CANCELLED_MOVE)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('recipes', nargs='*', default=list(recipes.RECIPES))
  parser.add_argument('--steps', type=int, default=100)
  parser.add_argument('--dtypes', nargs='+', default=['float64', 'float32'])
  parser.add_argument('--set', action='append', default=[], type=_override,
                      help='one of our config fields changed on our side only (to see a '
                           'difference caught), e.g. model.bn_running_var=biased')
  parser.add_argument('--json', help='write every difference here')
  parser.add_argument('--torch-python', default=parity.TORCH_PYTHON)
  args = parser.parse_args()
  growth = [s for s in GROWTH_STEPS if s <= args.steps]
  print('| recipe | steps | float64: loss | params | running stats | logits | BN-cancelled biases '
        f'moved | float32 loss at steps {" / ".join(map(str, growth))} | float32 params | seconds |')
  print('|---|---|---|---|---|---|---|---|---|---|')
  results, failed = {}, []
  for name in args.recipes:
    recipe, start = recipes.RECIPES[name], time.time()
    recipe = dataclasses.replace(recipe, overrides={**recipe.overrides, **dict(args.set)})
    runs = {dtype: parity.compare(recipe, dtype, args.steps, args.torch_python)
            for dtype in args.dtypes}
    results[name] = {dtype: {**{k: r[k] for k in (*KINDS, 'worst', 'cancelled',
                                                    'cancelled_moved')},
                             'loss_by_step': r['loss_by_step'].tolist()}
                     for dtype, r in runs.items()}
    cells = lambda dtype, kinds: [f'{runs[dtype][k]:.1e}' if dtype in runs else '-' for k in kinds]
    f32 = (' / '.join(f'{runs["float32"]["loss_by_step"][s - 1]:.0e}' for s in growth)
           if 'float32' in runs else '-')
    print(f'| {name} | {args.steps} | {" | ".join(cells("float64", KINDS[:4]))} '
          f'| {" | ".join(cells("float64", ["cancelled_moved"]))} | {f32} '
          f'| {cells("float32", ["params"])[0]} | {time.time() - start:.0f} |', flush=True)
    if 'float64' in runs and not agrees(runs['float64']):
      failed.append(name)
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(results, f, indent=1)
  if failed:
    raise SystemExit(f'float64 differences above {FLOAT64_TOLERANCE:g}: {", ".join(failed)}')


if __name__ == '__main__':
  main()
