"""Training curves: comparison figures and per-run PNGs from metrics.jsonl files written here."""

import json
import os
import subprocess
import sys

import matplotlib.image
import pytest

from resnet_flax.reporting import plot
from resnet_flax.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def write_run(workdir, lr, epochs=2, steps_per_epoch=4, evaluate=True):
  """A metrics.jsonl shaped like train.py's: train records every 2 steps, evaluations per epoch."""
  os.makedirs(workdir, exist_ok=True)
  records = []
  for step in range(2, epochs * steps_per_epoch + 1, 2):
    records.append({'step': step, 'epoch': step / steps_per_epoch, 'loss': 2.3 / step,
                    'accuracy': min(1.0, 0.1 * step), 'learning_rate': lr * (1 - step / 10),
                    'images_per_sec': 100.0})
    if evaluate and step % steps_per_epoch == 0:
      records.append({'step': step, 'epoch': step // steps_per_epoch, 'test_loss': 2.0 / step,
                      'test_accuracy': 0.08 * step})
  with open(os.path.join(workdir, 'metrics.jsonl'), 'w') as f:
    f.writelines(json.dumps(r) + '\n' for r in records)
  return str(workdir)


def assert_png(path, min_width=300):
  with open(path, 'rb') as f:
    assert f.read(8) == PNG_SIGNATURE
  image = matplotlib.image.imread(path)
  assert image.ndim == 3 and image.shape[1] >= min_width
  assert image.std() > 0  # something is drawn
  return image


def test_plot_runs_overlays_several_runs_in_one_png(tmp_path):
  runs = [write_run(tmp_path / 'lr0.1', 0.1), write_run(tmp_path / 'lr0.4', 0.4)]
  out = plot.plot_runs(runs, str(tmp_path / 'curves.png'))
  image = assert_png(out, min_width=1000)
  assert image.shape[1] > 2 * image.shape[0]  # three panels side by side


def test_same_named_runs_are_told_apart_by_their_paths(tmp_path):
  names = plot._legend_names([str(tmp_path / 'a' / 'run'), str(tmp_path / 'b' / 'run'),
                              str(tmp_path / 'c')])
  assert names[0].endswith(os.path.join('a', 'run')) and names[1].endswith(os.path.join('b', 'run'))
  assert plot._legend_names(['x/run1/', 'y/run2']) == ['run1', 'run2']


def test_write_run_plots_writes_loss_accuracy_and_lr(tmp_path):
  workdir = write_run(tmp_path / 'run', 0.1)
  paths = plot.write_run_plots(workdir)
  assert [os.path.basename(p) for p in paths] == ['loss.png', 'accuracy.png', 'lr.png']
  for path in paths:
    assert os.path.dirname(path) == os.path.join(workdir, 'plots')
    assert_png(path)


def test_a_run_without_evaluations_yet_still_plots(tmp_path):
  workdir = write_run(tmp_path / 'run', 0.1, evaluate=False)
  for path in plot.write_run_plots(workdir):
    assert_png(path)


def test_missing_or_empty_metrics_are_user_errors(tmp_path):
  with pytest.raises(UserError, match='has no metrics.jsonl'):
    plot.load_run(str(tmp_path))
  with pytest.raises(UserError, match='is not a directory'):
    plot.load_run(str(tmp_path / 'nope'))
  (tmp_path / 'metrics.jsonl').write_text('')
  with pytest.raises(UserError, match='no records yet'):
    plot.load_run(str(tmp_path))


def run_cli(*args):
  return subprocess.run([sys.executable, '-m', 'resnet_flax.plot', *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=120, check=False)


def test_cli_writes_the_comparison_and_fails_clearly_without_metrics(tmp_path):
  runs = [write_run(tmp_path / 'a', 0.1), write_run(tmp_path / 'b', 0.2)]
  out = str(tmp_path / 'cmp.png')
  proc = run_cli(*runs, '--out', out)
  assert proc.returncode == 0, proc.stderr
  assert f'wrote {out}' in proc.stdout
  assert_png(out, min_width=1000)

  empty = tmp_path / 'empty'
  empty.mkdir()
  proc = run_cli(runs[0], str(empty))
  assert proc.returncode == 2
  assert 'has no metrics.jsonl' in proc.stderr and 'Traceback' not in proc.stderr
