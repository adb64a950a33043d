"""The model takes its parts: nothing under resnet_flax/models imports CPU-runtime code or keeps
global state that chooses kernels."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, 'resnet_flax', 'models')
RUNTIME = ('resnet_flax.ops', 'resnet_flax.cpu')


def test_importing_the_models_loads_no_runtime_module():
  probe = ('import sys, resnet_flax.models\n'
           f'print([m for m in sys.modules if m.startswith({RUNTIME!r})])')
  out = subprocess.run([sys.executable, '-c', probe], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, check=True).stdout
  assert out.strip().splitlines()[-1] == '[]', out


def test_no_model_file_names_runtime_code_or_global_state():
  forbidden = re.compile(r'resnet_flax\.(ops|cpu)\b|from resnet_flax import .*\b(ops|cpu)\b'
                         r'|\bcontextvars\b|\bContextVar\b|\bonednn\b')
  offenders = []
  for name in sorted(os.listdir(MODELS)):
    if name.endswith('.py'):
      with open(os.path.join(MODELS, name), encoding='utf-8') as f:
        offenders += [f'{name}:{i}: {line.strip()}' for i, line in enumerate(f, 1)
                      if forbidden.search(line)]
  assert not offenders, offenders
