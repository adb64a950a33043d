"""Runs both sides of one recipe and measures how far apart they end.

The reference runs in a subprocess under the interpreter that has torch (the two live in
different venvs); the .npz it writes carries its initial weights to our side and its losses
and final state back. Differences are relative per tensor: max |ours - theirs| / max |theirs|,
then the largest over the tensors of a kind (params, BN running statistics), over the steps
(losses) or over the eval batch (logits).
"""

import os
import subprocess
import sys
import tempfile
from typing import Any

import numpy as np
from flax import traverse_util

from fidelity import names, ours, recipes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_PYTHON = os.path.join(ROOT, '.venv-bench', 'bin', 'python')


def reference(recipe: recipes.Recipe, dtype: str, steps: int,
              torch_python: str = TORCH_PYTHON) -> dict[str, np.ndarray]:
  """The reference trainer's outputs: torch_trainer.py under `torch_python`, or
  keras_trainer.py under this interpreter (whose TensorFlow carries Keras)."""
  python, trainer = ((sys.executable, 'fidelity.keras_trainer') if recipe.framework == 'keras'
                     else (torch_python, 'fidelity.torch_trainer'))
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, 'reference.npz')
    subprocess.run([python, '-m', trainer, recipe.name, dtype, str(steps), path], cwd=ROOT,
                   check=True)
    with np.load(path) as f:
      return dict(f)


def relative(ours_value: np.ndarray, theirs: np.ndarray, scale: float | None = None) -> float:
  """max |ours - theirs| / scale, by default max |theirs| (0 for two all-zero tensors)."""
  scale = np.max(np.abs(theirs)) if scale is None else scale
  diff = np.max(np.abs(np.asarray(ours_value, np.float64) - theirs))
  return float(diff / scale) if scale else float(diff)


def compare(recipe: recipes.Recipe, dtype: str, steps: int,
            torch_python: str = TORCH_PYTHON) -> dict[str, Any]:
  """Both sides' runs and their differences: {'loss', 'params', 'running_stats', 'logits',
  'lr', 'loss_by_step', 'worst', 'cancelled', 'cancelled_moved'} (the relative loss difference
  at every step; the names of the parameter and the statistic that differ most; for the biases
  that a BatchNorm cancels (recipes.cancelled) the largest absolute difference, and how far
  either side moved them from the start)."""
  theirs = reference(recipe, dtype, steps, torch_python)
  init = {k[len('init/'):]: v for k, v in theirs.items() if k.startswith('init/')}
  final = {k[len('final/'):]: v for k, v in theirs.items() if k.startswith('final/')}
  mine = ours.train(recipe, dtype, steps, init)
  their_vars = traverse_util.flatten_dict(names.variables(final, recipe.layout, np.float64),
                                          sep='/')
  my_vars = traverse_util.flatten_dict(mine['variables'], sep='/')
  assert set(my_vars) == set(their_vars), set(my_vars) ^ set(their_vars)
  start = traverse_util.flatten_dict(names.variables(init, recipe.layout, np.float64), sep='/')
  by_kind = {'params': [], 'batch_stats': [], 'cancelled': [(0.0, '')]}
  moved = [0.0]
  for key, value in their_vars.items():
    if recipes.cancelled(recipe, key):
      by_kind['cancelled'].append((float(np.max(np.abs(my_vars[key] - value))), key))
      moved += [float(np.max(np.abs(v - start[key]))) for v in (my_vars[key], value)]
    else:
      by_kind[key.split('/')[0]].append((relative(my_vars[key], value, _scale(key, their_vars)),
                                         key))
  loss_by_step = np.abs(mine['losses'] - theirs['losses']) / np.abs(theirs['losses'])
  return {'loss': float(loss_by_step.max()), 'params': max(by_kind['params'])[0],
          'running_stats': max(by_kind['batch_stats'])[0],
          'worst': [max(by_kind['params'])[1], max(by_kind['batch_stats'])[1]],
          'logits': relative(mine['logits'], theirs['logits']),
          'lr': relative(mine['lrs'], theirs['lrs']), 'loss_by_step': loss_by_step,
          'cancelled': max(by_kind['cancelled'])[0], 'cancelled_moved': max(moved)}


def _scale(key: str, their_vars: dict[str, np.ndarray]) -> float | None:
  """A running mean's difference counts against its BatchNorm's largest running std, the scale
  at which it enters the normalisation (the mean of zero-mean data is itself ~0); any other
  tensor's against its own largest value."""
  if key.startswith('batch_stats/') and key.endswith('/mean'):
    return float(np.sqrt(np.max(their_vars[key.removesuffix('mean') + 'var'])))
  return None
