"""Our training step against the reference trainers' (fidelity/, `make parity`): float64 runs
agree to 1e-9 relative, and a changed semantic on our side is caught.

Each test starts `python -m fidelity`, which runs the PyTorch side under .venv-bench (the
PyTorch recipes are skipped where it is absent: `make bench-venv` makes it) or the Keras side
under this interpreter (TensorFlow's Keras).
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_PYTHON = os.path.join(ROOT, '.venv-bench', 'bin', 'python')
KINDS = ('loss', 'params', 'running_stats', 'logits', 'lr')

pytestmark = pytest.mark.slow  # a float64 ResNet on both sides: tens of seconds to minutes each
needs_torch = pytest.mark.skipif(not os.path.exists(TORCH_PYTHON),
                                 reason='PyTorch (.venv-bench) is absent: `make bench-venv`')


def case(recipe: str, *args):
  """A parametrize entry; recipes other than the Keras lesson's need PyTorch."""
  return pytest.param(recipe, *args, marks=() if recipe.startswith('keras_') else needs_torch)


def parity(tmp_path, *args):
  """(the process, its per-recipe differences)."""
  path = tmp_path / 'parity.json'
  proc = subprocess.run([sys.executable, '-m', 'fidelity', *args, '--json', str(path)],
                        cwd=ROOT, capture_output=True, text=True)
  assert path.exists(), proc.stdout + proc.stderr
  return proc, json.loads(path.read_text())


@pytest.mark.parametrize('recipe', [case(r) for r in (
    'akamaster_resnet20', 'kuangliu_resnet18', 'akamaster_resnet20_label_smoothing',
    'wrn16_4_nesterov', 'tutorial_resnet18_fashion_mnist', 'keras_resnet18_cifar100')])
def test_float64_training_equals_the_reference_for_100_steps(recipe, tmp_path):
  """Every loss, parameter, running statistic, eval logit and lr; the biases that a BatchNorm
  cancels (their exact gradient is 0) moved by rounding noise alone, on both sides."""
  proc, results = parity(tmp_path, recipe, '--dtypes', 'float64')
  assert proc.returncode == 0, proc.stdout + proc.stderr
  differences = results[recipe]['float64']
  assert all(differences[kind] < 1e-9 for kind in KINDS), differences
  assert differences['cancelled_moved'] <= 1e-6, differences


@pytest.mark.parametrize('recipe, field, caught, steps', [
    # flax's biased running variance: the same training (batches are normalised with the
    # biased variance either way), other running statistics and eval logits
    case('akamaster_resnet20', 'model.bn_running_var=biased', ('running_stats', 'logits'), 5),
    case('akamaster_resnet20_label_smoothing', 'optim.label_smoothing=0.0', ('loss', 'params'), 5),
    case('akamaster_resnet20', 'optim.nesterov=True', ('params', 'logits'), 5),
    # the lesson's lr decays first after its third epoch, not its second
    case('tutorial_resnet18_fashion_mnist', 'optim.decay_begin_epochs=0.0', ('lr',), 21),
    # Keras's Adam adds eps to sqrt(v) before the bias correction; its BatchNorm's eps is 1e-3
    case('keras_resnet18_cifar100', 'optim.adam_eps_placement=corrected', ('params',), 3),
    case('keras_resnet18_cifar100', 'model.bn_epsilon=1e-5', ('loss', 'params', 'logits'), 3),
])
def test_a_changed_semantic_is_caught(recipe, field, caught, steps, tmp_path):
  proc, results = parity(tmp_path, recipe, '--dtypes', 'float64', '--steps', str(steps),
                         '--set', field)
  assert proc.returncode != 0
  differences = results[recipe]['float64']
  assert all(differences[kind] > 1e-6 for kind in caught), differences
