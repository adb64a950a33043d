"""Training curves from metrics.jsonl: one run's PNGs, or several runs overlaid to compare them.

  python -m resnet_flax.plot runs/a runs/b [...] [--out curves.png]

Three panels: train (solid) and test (dashed, dots) loss against epochs on one log-scale axis,
the same for accuracy (linear), and the learning rate of every step against steps (records
written before it was logged per step give their window's mean at the window's last step). Each run keeps one colour; the legend names runs by their
directory. `write_run_plots(workdir)` draws one run into workdir/plots/{loss,accuracy,lr}.png.
Both read metrics.jsonl only, so they work while the run is still training.
"""

import argparse
import os
from collections.abc import Sequence
from typing import Any

from resnet_flax.errors import UserError
from resnet_flax.reporting.metrics_log import read_records

PANELS = ('loss', 'accuracy', 'lr')
_TITLES = {'loss': 'loss', 'accuracy': 'accuracy', 'lr': 'learning rate'}
_TEST_STYLE = {'linestyle': '--', 'marker': 'o', 'markersize': 3}

Run = tuple[str, list[dict[str, Any]]]  # (legend name, metrics.jsonl records)


def load_run(workdir: str) -> list[dict[str, Any]]:
  """The records of `workdir`/metrics.jsonl; a UserError when there are none to draw."""
  path = os.path.join(workdir, 'metrics.jsonl')
  if not os.path.isfile(path):
    what = 'is not a directory' if not os.path.isdir(workdir) else 'has no metrics.jsonl'
    hint = (f' It is a sweep directory: pass its trials ({os.path.join(workdir, "*/")}), or see '
            'its results.png.' if os.path.isfile(os.path.join(workdir, 'trials.json')) else '')
    raise UserError(f'{workdir} {what}, so it has no curves to plot. Pass the --workdir of a '
                    'training run (train.py writes metrics.jsonl there once it logs its first '
                    f'steps).{hint}')
  records = read_records(path)
  if not records:
    raise UserError(f'{path} has no records yet: the run logs its first after log_every_steps '
                    'steps. Plot it again later.')
  return records


def plot_runs(workdirs: Sequence[str], out: str) -> str:
  """Overlays the curves of `workdirs` in one figure of three panels, saved to `out`."""
  from matplotlib.lines import Line2D  # pylint: disable=g-import-not-at-top
  runs = list(zip(_legend_names(workdirs), (load_run(w) for w in workdirs)))
  fig = _figure(figsize=(17, 4.8 + 0.25 * ((len(runs) + 2) // 3)))
  for i, panel in enumerate(PANELS):
    _draw(fig.add_subplot(1, len(PANELS), i + 1), panel, runs)
  fig.legend(handles=[Line2D([], [], color=_color(i), label=name)
                      for i, (name, _) in enumerate(runs)],
             loc='outside lower center', ncols=min(len(runs), 3), fontsize=9)
  return _save(fig, out)


def write_run_plots(workdir: str) -> list[str]:
  """Writes workdir/plots/loss.png, accuracy.png and lr.png; returns their paths."""
  run = [(_name(workdir), load_run(workdir))]
  directory = os.path.join(workdir, 'plots')
  os.makedirs(directory, exist_ok=True)
  paths = []
  for panel in PANELS:
    fig = _figure(figsize=(7, 4.5))
    _draw(fig.add_subplot(), panel, run, title=f'{_TITLES[panel]}: {run[0][0]}')
    paths.append(_save(fig, os.path.join(directory, f'{panel}.png')))
  return paths


def _figure(figsize: tuple[float, float]) -> Any:
  # A bare Figure renders with Agg and leaves pyplot's global backend alone.
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  return Figure(figsize=figsize, layout='constrained')


def _color(i: int) -> str:
  return f'C{i % 10}'


def _draw(ax: Any, panel: str, runs: list[Run], title: str | None = None) -> None:
  """One panel: a run's curves share its colour; train solid, test dashed with dots."""
  from matplotlib.lines import Line2D  # pylint: disable=g-import-not-at-top
  from matplotlib.ticker import (FuncFormatter, NullFormatter,  # pylint: disable=g-import-not-at-top
                                 PercentFormatter)
  for i, (_, records) in enumerate(runs):
    train = [r for r in records if 'loss' in r]
    test = [r for r in records if 'test_loss' in r]
    if panel == 'lr':
      ax.plot(*lr_per_step(train), color=_color(i), drawstyle='steps-post')
      continue
    ax.plot([r['epoch'] for r in train], [r[panel] for r in train], color=_color(i), linewidth=1)
    ax.plot([r['epoch'] for r in test], [r[f'test_{panel}'] for r in test], color=_color(i),
            **_TEST_STYLE)
  if panel != 'lr':
    ax.legend(handles=[Line2D([], [], color='0.3', linewidth=1, label='train'),
                       Line2D([], [], color='0.3', label='test', **_TEST_STYLE)], fontsize=8)
  if panel == 'accuracy':
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
  if panel == 'loss':
    ax.set_yscale('log')
    # Plain numbers: the default 10^k labels need mathtext fonts that are not always installed.
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f'{value:g}'))
    ax.yaxis.set_minor_formatter(NullFormatter())
  ax.set(xlabel='step' if panel == 'lr' else 'epoch', ylabel=_TITLES[panel],
         title=title or _TITLES[panel])
  ax.grid(alpha=0.3)


def lr_per_step(train: list[dict[str, Any]]) -> tuple[list[int], list[float]]:
  """(steps, learning rates): each step's own from 'learning_rate_steps' (the steps that end at
  the record's step), else the record's mean at its step."""
  steps, rates = [], []
  for r in train:
    per_step = r.get('learning_rate_steps') or [r['learning_rate']]
    first = r['step'] - len(per_step) + 1
    for step, rate in enumerate(per_step, first):
      if not steps or step > steps[-1]:
        steps.append(step)
        rates.append(rate)
  return steps, rates


def _save(fig: Any, path: str) -> str:
  try:
    fig.savefig(path, dpi=100)
  except ValueError as e:  # matplotlib names the formats it knows
    raise UserError(f'Cannot save a plot as {path}: {e}. Use a .png (or .pdf, .svg) file name.'
                    ) from None
  except OSError as e:
    raise UserError(f'Cannot write {path} ({e.strerror or e}). Choose a writable --out.') from None
  return path


def _name(workdir: str) -> str:
  return os.path.basename(os.path.normpath(workdir))


def _legend_names(workdirs: Sequence[str]) -> list[str]:
  """Directory names; whole paths where two runs share a name (a/run, b/run)."""
  names = [_name(w) for w in workdirs]
  if len(set(names)) < len(names):
    names = [os.path.normpath(w) for w in workdirs]
  return names


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(prog='python -m resnet_flax.plot',
                                   description=__doc__.split('\n')[0])
  parser.add_argument('workdirs', nargs='+', metavar='DIR', help="training runs' --workdir")
  parser.add_argument('--out', default='curves.png', help='image file (default: curves.png)')
  args = parser.parse_args(argv)
  print(f'wrote {plot_runs(args.workdirs, args.out)}')
