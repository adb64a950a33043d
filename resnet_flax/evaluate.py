"""Evaluates a saved checkpoint on every example of a split, with more detail than training logs.

  python -m resnet_flax.evaluate --workdir runs/digits [--step N] [--split test|train]
                                 [--batch-size B]

Prints loss, top-1, top-5 and per-class accuracy; writes them with the confusion matrix to
WORKDIR/eval/<split>_step<N>.json and draws the matrix to <split>_step<N>_confusion.png.
"""

import argparse
import json
import os
from typing import Any

import ml_collections
import numpy as np
from absl import logging

from resnet_flax import data as data_lib
from resnet_flax.training import evaluation
from resnet_flax.errors import UserError, exit_on_user_error
from resnet_flax.checkpoints.restore_run import restore_run

SPLITS = ('test', 'train')


def evaluate(workdir: str, step: int | None = None, split: str = 'test',
             batch_size: int | None = None) -> dict[str, Any]:
  """Metrics of checkpoint `step` (default: newest) on `split`; also saved under workdir/eval/."""
  if split not in SPLITS:
    raise UserError(f'--split {split}: use one of {", ".join(SPLITS)}.')
  config, model, state, meta = restore_run(workdir, step)
  dataset = data_lib.load_dataset(config)
  _check_same_data(dataset, config, meta)
  batch_size = config.eval_batch_size if batch_size is None else batch_size
  if batch_size < 1:
    raise UserError(f'--batch-size {batch_size}: use a positive number of images per batch.')
  evaluator = evaluation.Evaluator(model, data_lib.Preprocess.from_dataset(
      dataset, config.data.image_size), dataset.num_classes)
  totals = evaluator.totals(evaluation.eval_variables(state),
                            data_lib.eval_batches(getattr(dataset, split), batch_size))
  result = _summary(totals, evaluator.k, meta, split)
  result['files'] = _write(result, os.path.join(workdir, 'eval'))
  return result


def _check_same_data(dataset: data_lib.Dataset, config: ml_collections.ConfigDict,
                     meta: dict[str, Any]) -> None:
  """The dataset loaded now must be of the kind the checkpoint was trained on."""
  now = {'num_classes': dataset.num_classes,
         'image_shape': list(data_lib.input_shape(dataset, config.data.image_size))}
  then = {key: meta['data'][key] for key in now}
  if now != then:
    raise UserError(f'The {dataset.name} data loaded now ({now}) differs from the data that '
                    f'checkpoint {meta["step"]} was trained on ({then}), so it cannot be '
                    f'evaluated on it. Restore the original data (the run reads it from '
                    f'data_dir {config.data.data_dir!r}).')


def _summary(totals: dict[str, np.ndarray], k: int, meta: dict[str, Any],
             split: str) -> dict[str, Any]:
  confusion = totals['confusion']  # rows: true label, columns: predicted label
  count = int(confusion.sum())
  per_class_count, per_class_correct = confusion.sum(1), np.diag(confusion)
  return {
      'step': meta['step'], 'split': split, 'dataset': meta['data']['name'], 'count': count,
      'loss': float(totals['loss']) / count,
      'top1_accuracy': int(per_class_correct.sum()) / count,
      'top5_accuracy': int(totals['top_k']) / count, 'top5_k': k,
      'per_class': [{'label': i, 'name': name, 'count': int(n), 'correct': int(c),
                     'accuracy': int(c) / int(n) if n else None}
                    for i, (name, n, c) in enumerate(zip(meta['data']['label_names'],
                                                         per_class_count, per_class_correct))],
      'confusion': confusion.tolist(),
  }


def _write(result: dict[str, Any], directory: str) -> dict[str, str]:
  stem = os.path.join(directory, f'{result["split"]}_step{result["step"]}')
  paths = {'json': stem + '.json', 'confusion_png': stem + '_confusion.png'}
  try:
    os.makedirs(directory, exist_ok=True)
    record = result | {'confusion_axes': 'rows: true label, columns: predicted label'}
    with open(paths['json'], 'w') as f:  # a key per line, each value on one line
      f.write('{\n' + ',\n'.join(f' {json.dumps(k)}: {json.dumps(v)}' for k, v in record.items())
              + '\n}\n')
    _plot_confusion(np.asarray(result['confusion']), [c['name'] for c in result['per_class']],
                    f'{result["dataset"]} {result["split"]}, step {result["step"]}: top-1 '
                    f'{result["top1_accuracy"]:.2%}', paths['confusion_png'])
  except OSError as e:
    raise UserError(f'Cannot write the evaluation results to {directory} ({e.strerror or e}). '
                    'Make --workdir writable.') from None
  return paths


def _plot_confusion(confusion: np.ndarray, names: list[str], title: str, path: str) -> None:
  """Counts as colours, true labels down, predictions across; counts written in up to 20x20."""
  # A bare Figure renders PNGs with Agg and leaves pyplot's global backend alone.
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  from matplotlib.ticker import MaxNLocator  # pylint: disable=g-import-not-at-top
  n = len(names)
  font = 9 if n <= 30 else 5
  fig = Figure(figsize=(max(6.0, 0.17 * n + 3), max(5.0, 0.17 * n + 2)), layout='constrained')
  ax = fig.add_subplot()
  image = ax.imshow(confusion, cmap='Blues', interpolation='nearest')
  bar = fig.colorbar(image, ax=ax, shrink=0.8, label='images')
  bar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
  ax.set_xticks(range(n), names, rotation=90, fontsize=font)
  ax.set_yticks(range(n), names, fontsize=font)
  ax.set(xlabel='predicted', ylabel='true', title=title)
  if n <= 20:
    for (row, col), value in np.ndenumerate(confusion):
      ax.text(col, row, value, ha='center', va='center', fontsize=font,
              color='white' if value > confusion.max() / 2 else 'black')
  fig.savefig(path, dpi=100)


def format_result(result: dict[str, Any]) -> str:
  """The printed report: headline metrics, then one row per class."""
  width = max(5, *(len(c['name']) for c in result['per_class']))
  lines = [f'{result["dataset"]} {result["split"]} split, step {result["step"]}: '
           f'{result["count"]:,} images',
           f'loss {result["loss"]:.4f} | top-1 {result["top1_accuracy"]:.2%} | '
           f'top-{result["top5_k"]} {result["top5_accuracy"]:.2%}',
           '',
           f'{"label":>5}  {"name":<{width}}  {"images":>7}  {"top-1":>7}']
  for c in result['per_class']:
    accuracy = f'{c["accuracy"]:.2%}' if c['accuracy'] is not None else '-'
    lines.append(f'{c["label"]:>5}  {c["name"]:<{width}}  {c["count"]:>7,}  {accuracy:>7}')
  lines += ['', *(f'wrote {path}' for path in result['files'].values())]
  return '\n'.join(lines)


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(prog='python -m resnet_flax.evaluate',
                                   description=__doc__.split('\n')[0])
  parser.add_argument('--workdir', required=True, help="the training run's --workdir")
  parser.add_argument('--step', type=int, help='checkpoint step (default: the newest)')
  parser.add_argument('--split', default='test', choices=SPLITS)
  parser.add_argument('--batch-size', type=int, help="default: the run's eval_batch_size")
  args = parser.parse_args(argv)
  logging.set_verbosity(logging.ERROR)  # orbax's notes on read-only checkpoint managers
  print(format_result(evaluate(args.workdir, args.step, args.split, args.batch_size)))


if __name__ == '__main__':
  exit_on_user_error(main)
