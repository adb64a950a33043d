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
  """The reference trainer's outputs (torch_trainer.py), run under `torch_python`."""
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, 'reference.npz')
    subprocess.run([torch_python, '-m', 'fidelity.torch_trainer', recipe.name, dtype,
                    str(steps), path], cwd=ROOT, check=True)
    with np.load(path) as f:
      return dict(f)


def relative(ours_value: np.ndarray, theirs: np.ndarray) -> float:
  """max |ours - theirs| / max |theirs| (0 for two all-zero tensors)."""
  scale = np.max(np.abs(theirs))
  diff = np.max(np.abs(np.asarray(ours_value, np.float64) - theirs))
  return float(diff / scale) if scale else float(diff)


def compare(recipe: recipes.Recipe, dtype: str, steps: int,
            torch_python: str = TORCH_PYTHON) -> dict[str, Any]:
  """Both sides' runs and their differences: {'loss', 'params', 'running_stats', 'logits',
  'lr', 'loss_by_step', 'worst'} (the relative loss difference at every step; the names of the
  parameter and the statistic that differ most)."""
  theirs = reference(recipe, dtype, steps, torch_python)
  init = {k[len('init/'):]: v for k, v in theirs.items() if k.startswith('init/')}
  final = {k[len('final/'):]: v for k, v in theirs.items() if k.startswith('final/')}
  mine = ours.train(recipe, dtype, steps, init)
  their_vars = traverse_util.flatten_dict(names.variables(final, recipe.layout, np.float64),
                                          sep='/')
  my_vars = traverse_util.flatten_dict(mine['variables'], sep='/')
  assert set(my_vars) == set(their_vars), set(my_vars) ^ set(their_vars)
  by_kind = {'params': [], 'batch_stats': []}
  for key, value in their_vars.items():
    by_kind[key.split('/')[0]].append((relative(my_vars[key], value), key))
  loss_by_step = np.abs(mine['losses'] - theirs['losses']) / np.abs(theirs['losses'])
  return {'loss': float(loss_by_step.max()), 'params': max(by_kind['params'])[0],
          'running_stats': max(by_kind['batch_stats'])[0],
          'worst': [max(by_kind['params'])[1], max(by_kind['batch_stats'])[1]],
          'logits': relative(mine['logits'], theirs['logits']),
          'lr': relative(mine['lrs'], theirs['lrs']), 'loss_by_step': loss_by_step}
