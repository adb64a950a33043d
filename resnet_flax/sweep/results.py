"""A sweep's results from its trial directories: results.csv, results.md and results.png.

results.csv has one row per trial: its overrides, seed, status, the final metrics of results.json
and the best test accuracy in metrics.jsonl. results.md and results.png summarise each setting
(the trials that differ only in seed) as mean and sample standard deviation over its finished
seeds.
"""

import csv
import json
import os
import statistics
from typing import Any

from resnet_flax.errors import UserError
from resnet_flax.sweep import status
from resnet_flax.sweep.spec import ROOT

FINAL = ('test_accuracy', 'test_loss', 'train_accuracy', 'train_loss', 'step', 'num_params')
# (results.md column, results.csv column, scale, decimals)
SUMMARY = (('test accuracy (%)', 'test_accuracy', 100, 2),
           ('best test accuracy (%)', 'best_test_accuracy', 100, 2),
           ('test loss', 'test_loss', 1, 4),
           ('train loss', 'train_loss', 1, 4))


def write_plan(workdir: str, plan: dict[str, Any]) -> None:
  """DIR/trials.json: the sweep's trials in array-task order, as `collect` reads them."""
  path = os.path.join(workdir, 'trials.json')
  with open(path + '.tmp', 'w') as f:
    json.dump(plan, f, indent=1)
  os.replace(path + '.tmp', path)


def read_plan(workdir: str) -> dict[str, Any]:
  path = os.path.join(workdir, 'trials.json')
  if not os.path.isfile(path):
    raise UserError(f'{workdir} has no trials.json, so it is not a sweep directory. Pass the '
                    'DIR of `python -m resnet_flax.sweep SWEEP.py --workdir DIR`.')
  with open(path) as f:
    return json.load(f)


def collect(workdir: str) -> dict[str, Any]:
  """Writes the three files from what the trial directories hold now; returns rows and paths."""
  plan = read_plan(workdir)
  keys = list(dict.fromkeys(k for t in plan['trials'] for k in t['overrides']))
  rows = [_row(workdir, trial, keys) for trial in plan['trials']]
  groups = _settings(rows, keys)
  paths = {'csv': _write_csv(os.path.join(workdir, 'results.csv'), rows, keys),
           'md': _write_markdown(os.path.join(workdir, 'results.md'), plan, rows, groups, keys)}
  if any(r['status'] == 'finished' for r in rows):
    paths['png'] = _plot(os.path.join(workdir, 'results.png'), plan, groups, keys)
  return {'rows': rows, 'settings': groups, 'files': paths}


def mean_std(values: list[float]) -> tuple[float, float | None]:
  """Mean and sample standard deviation (n - 1); no deviation from a single seed."""
  return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def _row(workdir: str, trial: dict[str, Any], keys: list[str]) -> dict[str, Any]:
  trial_dir = os.path.join(workdir, trial['name'])
  row = {'trial': trial['name'], 'setting': trial['setting'], 'seed': trial['seed'],
         'status': status.status(trial_dir)}
  row |= {k: _cell(trial['overrides'].get(k, '')) for k in keys}
  final = status.final_metrics(trial_dir) if row['status'] == 'finished' else {}
  row |= {k: final.get(k, '') for k in FINAL}
  best = status.best_test_accuracy(trial_dir)
  row['best_test_accuracy'], row['best_epoch'] = best if best else ('', '')
  return row


def _cell(value: Any) -> Any:
  return tuple(value) if isinstance(value, list) else value  # JSON turned tuples into lists


def _settings(rows: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
  """One entry per setting, in trial order, with mean/std of each summary column."""
  groups: dict[str, dict[str, Any]] = {}
  for row in rows:
    group = groups.setdefault(row['setting'], {'setting': row['setting'], 'rows': [],
                                               **{k: row[k] for k in keys}})
    group['rows'].append(row)
  for group in groups.values():
    done = [r for r in group['rows'] if r['status'] == 'finished']
    group['n'], group['total'] = len(done), len(group['rows'])
    for _, column, _, _ in SUMMARY:
      values = [float(r[column]) for r in done if r[column] != '']
      group[column] = mean_std(values) if values else None
  return list(groups.values())


def _write_csv(path: str, rows: list[dict[str, Any]], keys: list[str]) -> str:
  columns = ['trial', 'setting', *keys, 'seed', 'status', *FINAL, 'best_test_accuracy',
             'best_epoch']
  with open(path + '.tmp', 'w', newline='') as f:
    writer = csv.DictWriter(f, columns)
    writer.writeheader()
    writer.writerows(rows)
  os.replace(path + '.tmp', path)
  return path


def format_mean_std(stats: tuple[float, float | None] | None, scale: float, decimals: int) -> str:
  """'91.23 ± 0.15'; one seed: '91.23'; none finished: '–'."""
  if stats is None:
    return '–'
  mean, std = stats
  text = f'{mean * scale:.{decimals}f}'
  return text if std is None else f'{text} ± {std * scale:.{decimals}f}'


def _write_markdown(path: str, plan: dict[str, Any], rows: list[dict[str, Any]],
                    groups: list[dict[str, Any]], keys: list[str]) -> str:
  setting_columns = keys or ['setting']
  counts: dict[str, int] = {}
  for row in rows:
    counts[row['status']] = counts.get(row['status'], 0) + 1
  fixed = ', '.join(f'`{k}={v}`' for k, v in plan['fixed'].items()) or 'none'
  lines = [f'# Sweep {os.path.basename(os.path.normpath(os.path.dirname(path)))}', '',
           (f'Base config `{_shown(plan["config"])}`; fixed overrides: {fixed}; seeds: '
            f'{plan["seeds"] or "the config default"}.'),
           f'{len(rows)} trials: ' + ', '.join(f'{n} {s}' for s, n in counts.items()) + '.',
           ('Each cell is the mean ± sample standard deviation over the finished seeds (n); the '
            'final values are those at the end of training.'), '',
           '| ' + ' | '.join([*setting_columns, 'n', *(s[0] for s in SUMMARY)]) + ' |',
           '|' + '---|' * (len(setting_columns) + 1 + len(SUMMARY))]
  for group in groups:
    cells = [str(group[k]).replace('|', '\\|') for k in keys] if keys else [group['setting']]
    cells.append(f'{group["n"]}/{group["total"]}')
    cells += [format_mean_std(group[column], scale, decimals)
              for _, column, scale, decimals in SUMMARY]
    lines.append('| ' + ' | '.join(cells) + ' |')
  unfinished = [r for r in rows if r['status'] != 'finished']
  if unfinished:
    lines += ['', 'Not finished (their logs: TRIAL/log.txt):', '']
    lines += [f'- `{r["trial"]}`: {r["status"]}' for r in unfinished]
  with open(path + '.tmp', 'w') as f:
    f.write('\n'.join(lines) + '\n')
  os.replace(path + '.tmp', path)
  return path


def _shown(config: str) -> str:
  """The config as the repository names it (configs/digits.py), else its absolute path."""
  relative = os.path.relpath(config, ROOT)
  return config if relative.startswith('..') else relative


def _plot(path: str, plan: dict[str, Any], groups: list[dict[str, Any]], keys: list[str]) -> str:
  """Final test accuracy per setting: mean ± std as error bars, each seed as a dot. With one
  numeric swept key its values are the x axis (log-scaled when they span a decade or more)."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  from matplotlib.ticker import PercentFormatter  # pylint: disable=g-import-not-at-top
  shown = [g for g in groups if g['n']]
  numeric = len(keys) == 1 and all(isinstance(g[keys[0]], (int, float))
                                   and not isinstance(g[keys[0]], bool) for g in shown)
  xs = [g[keys[0]] for g in shown] if numeric else list(range(len(shown)))
  fig = Figure(figsize=(max(6.0, 0.6 * len(shown) + 3), 4.5), layout='constrained')
  ax = fig.add_subplot()
  means = [g['test_accuracy'][0] for g in shown]
  stds = [g['test_accuracy'][1] or 0.0 for g in shown]
  ax.errorbar(xs, means, yerr=stds, fmt='o-' if numeric else 'o', capsize=4, color='C0',
              label='final test accuracy (mean ± std over seeds)')
  for x, group in zip(xs, shown):
    seeds = [float(r['test_accuracy']) for r in group['rows'] if r['status'] == 'finished']
    ax.plot([x] * len(seeds), seeds, '.', color='C1', alpha=0.7,
            label='one seed' if group is shown[0] else None)
  if numeric:
    positive = [x for x in xs if x > 0]
    if len(positive) == len(xs) and max(xs) >= 10 * min(xs):
      ax.set_xscale('log')
    ax.set_xlabel(keys[0])
  else:
    ax.set_xticks(xs, [g['setting'] for g in shown], rotation=30 if len(shown) > 3 else 0,
                  ha='right' if len(shown) > 3 else 'center', fontsize=8)
    ax.set_xlabel('setting')
  ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
  ax.set(ylabel='test accuracy', title=f'{os.path.basename(os.path.dirname(path))}: final test '
         f'accuracy ({_shown(plan["config"])})')
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.savefig(path, dpi=100)
  return path
