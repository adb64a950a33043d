"""The end of a run: a summary table, results.json and PNG curves (process 0 only)."""

import json
import math
import os
from typing import Any


def summary_table(records: list[dict[str, Any]], final: dict[str, Any], wall_s: float) -> str:
  """Best and final accuracy, wall time and throughput, from the run's metrics.jsonl records."""
  evals = [r for r in records if 'test_accuracy' in r]
  train = [r for r in records if r.get('images_per_sec', math.nan) == r.get('images_per_sec')]
  rows = [('final test accuracy', f'{final["test_accuracy"]:.2%} (loss {final["test_loss"]:.4f})')]
  if 'test_top5_accuracy' in final:
    rows.append(('final test top-5', f'{final["test_top5_accuracy"]:.2%}'))
  if evals:
    best = max(evals, key=lambda r: r['test_accuracy'])
    rows.append(('best test accuracy', f'{best["test_accuracy"]:.2%} at epoch {best["epoch"]}'))
  if 'val_accuracy' in final:
    rows.append(('final validation accuracy', f'{final["val_accuracy"]:.2%}'))
  if 'train_loss' in final:
    rows.append(('final train loss',
                 f'{final["train_loss"]:.4f} (accuracy {final["train_accuracy"]:.2%})'))
  if train:
    rate = sum(r['images_per_sec'] for r in train) / len(train)
    rows.append(('training throughput', f'{rate:,.0f} img/s (mean of log intervals)'))
  rows.append(('wall time (this process)', f'{wall_s / 60:.1f} min'))
  width = max(len(name) for name, _ in rows)
  return '\n'.join(f'  {name:<{width}}  {value}' for name, value in rows)


def write_results(workdir: str, final: dict[str, Any]) -> None:
  """Written last and atomically: its presence marks a finished run (sweeps skip such trials)."""
  path = os.path.join(workdir, 'results.json')
  with open(path + '.tmp', 'w') as f:
    json.dump(final, f, indent=1)
  os.replace(path + '.tmp', path)
