"""README.md stays a short manual whose commands, files, flags and config fields exist.

The fast test checks every name the README mentions against the code; the slow one runs the
"Your own experiment" command sequence, shortened to one epoch per training run.
"""

import importlib
import importlib.util
import os
import re
import shlex
import subprocess
import sys

import ml_collections
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, 'README.md')
MAX_LINES = 220

# `--config.a.b=value` is the README's placeholder for the override syntax, not a field.
PLACEHOLDER_OVERRIDES = {'a.b'}


def _readme() -> str:
  with open(README, encoding='utf-8') as f:
    return f.read()


def _config_paths() -> set[str]:
  """Every field of configs/default.py's config, sub-dicts included: 'optim', 'optim.momentum'."""
  sys.path.insert(0, ROOT)
  try:
    from configs import default  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.remove(ROOT)
  paths = set()

  def walk(node: ml_collections.ConfigDict, prefix: str) -> None:
    for key, value in node.items():
      paths.add(prefix + key)
      if isinstance(value, ml_collections.ConfigDict):
        walk(value, prefix + key + '.')

  walk(default.get_config(), '')
  return paths


def _makefile_targets() -> set[str]:
  targets = set()
  with open(os.path.join(ROOT, 'Makefile'), encoding='utf-8') as f:
    for line in f:
      match = re.match(r'^([A-Za-z0-9_.$() -]+?)\s*::?(?!=)', line)
      if match and not line.startswith('\t'):
        targets.update(match.group(1).split())
  return targets


def test_readme_is_short_and_names_only_what_exists():
  text = _readme()
  assert len(text.splitlines()) <= MAX_LINES, f'README.md has {len(text.splitlines())} lines'

  modules = set(re.findall(r'python -m (resnet_flax(?:\.\w+)*)', text))
  assert modules, 'README names no `python -m resnet_flax.X` command'
  for name in sorted(modules):
    module = importlib.import_module(name)
    is_package = hasattr(module, '__path__')
    runnable = hasattr(module, 'main') or (
        is_package and importlib.util.find_spec(name + '.__main__') is not None)
    assert runnable, f'`python -m {name}`: the module has neither main() nor a __main__'

  targets = _makefile_targets()
  named = set(re.findall(r'(?:^\s*|`)make ([a-z][\w-]*)', text, flags=re.M))
  assert {'test', 'train'} <= named
  assert not named - targets, f'Makefile lacks the targets {sorted(named - targets)}'

  for path in sorted(set(re.findall(r'configs/[\w/]+\.py', text))):
    assert os.path.isfile(os.path.join(ROOT, path)), f'README names {path}, which does not exist'

  fields = _config_paths()
  overrides = {o.rstrip('.') for o in re.findall(r'--config\.([\w.]+)', text)}
  assert overrides
  unknown = overrides - fields - PLACEHOLDER_OVERRIDES
  assert not unknown, f'README overrides fields configs/default.py lacks: {sorted(unknown)}'


def _experiment_commands(text: str) -> list[str]:
  """The lines of the ```sh block right under the heading that contains 'Your own experiment'."""
  match = re.search(r'^#+ [^\n]*Your own experiment[^\n]*\n\s*```sh\n(.*?)^```', text,
                    flags=re.M | re.S)
  assert match, 'no ```sh block under a "Your own experiment" heading'
  joined = match.group(1).replace('\\\n', ' ')
  return [line.strip() for line in joined.splitlines()
          if line.strip() and not line.strip().startswith('#')]


def _translate(command: str, runs: str) -> str:
  """The README command, run with this interpreter, writing under `runs` instead of runs/, and
  training one epoch (the sequence is tested shortened, not at its full length)."""
  words = shlex.split(command)
  if words[:2] == ['make', 'train']:
    settings = dict(word.split('=', 1) for word in words[2:])
    assert set(settings) <= {'CONFIG', 'WORKDIR', 'ARGS'}, command
    config = settings.get('CONFIG', 'configs/default.py')
    workdir = settings.get('WORKDIR', 'runs/' + os.path.splitext(os.path.basename(config))[0])
    words = ['python', 'train.py', '--config', config, '--workdir', workdir,
             *shlex.split(settings.get('ARGS', ''))]
  if words[0] in ('.venv/bin/python', 'python', 'python3'):
    words[0] = sys.executable
  else:
    pytest.fail(f'cannot run README command {command!r} in the test')
  words = [re.sub(r'(?<![\w/])runs/', runs + '/', word) for word in words]
  if len(words) > 1 and words[1] == 'train.py':
    words.append('--config.num_epochs=1')  # the last override wins: one epoch per run
  return shlex.join(words)


@pytest.mark.slow
def test_your_own_experiment_sequence_runs(tmp_path):
  commands = _experiment_commands(_readme())
  assert len(commands) >= 3
  runs = str(tmp_path / 'runs')
  for command in commands:
    translated = _translate(command, runs)
    result = subprocess.run(['bash', '-c', translated], cwd=ROOT, capture_output=True,
                            text=True, timeout=1200, check=False)
    assert result.returncode == 0, (f'{command}\n(run as {translated}) exited '
                                    f'{result.returncode}:\n{result.stdout[-3000:]}\n'
                                    f'{result.stderr[-3000:]}')
  last = shlex.split(_translate(commands[-1], runs))
  assert '--out' in last, 'the sequence should end by drawing a plot (--out FILE.png)'
  png = last[last.index('--out') + 1]
  assert png.endswith('.png') and os.path.getsize(png) > 0, png
