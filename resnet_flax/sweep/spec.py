"""Sweep files: what they may say, and the trials they expand into (names, overrides, commands)."""

import dataclasses
import hashlib
import importlib.util
import itertools
import math
import os
import random
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections

from resnet_flax.training import config_help
from resnet_flax.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_PY = os.path.join(ROOT, 'train.py')
KEYS = {'config': 'the base config file (required)',
        'fixed': '{key: value} overrides for every trial',
        'grid': '{key: [values]}: every combination is a setting',
        'random': '{key: distribution}: num_samples draws, each a setting',
        'num_samples': 'how many random draws',
        'random_seed': 'seed of the random draws (default 0)',
        'seeds': '[seeds]: each setting runs once per seed (config.seed)',
        'slurm': '{sbatch option: value} for --launcher slurm'}
SIGNIFICANT_DIGITS = 3  # random floats are rounded: short trial names that equal the value run
_NAME_CHARS = re.compile(r'[^A-Za-z0-9._,=+-]')
_MAX_NAME = 120


@dataclasses.dataclass(frozen=True)
class Distribution:
  """What `random` draws a value from; build one with uniform, log_uniform, int_uniform, choice."""
  kind: str
  args: tuple[Any, ...]

  def sample(self, rng: random.Random) -> Any:
    if self.kind == 'choice':
      return rng.choice(self.args)
    if self.kind == 'int_uniform':
      return rng.randint(*self.args)
    low, high = self.args
    if self.kind == 'log_uniform':
      value = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
      value = rng.uniform(low, high)
    return float(f'{value:.{SIGNIFICANT_DIGITS}g}')


def uniform(low: float, high: float) -> Distribution:
  _check_range('uniform', low, high)
  return Distribution('uniform', (float(low), float(high)))


def log_uniform(low: float, high: float) -> Distribution:
  """Uniform in log space: for learning rates and weight decays spanning decades."""
  _check_range('log_uniform', low, high)
  if low <= 0:
    raise UserError(f'log_uniform({low}, {high}): the bounds must be positive.')
  return Distribution('log_uniform', (float(low), float(high)))


def int_uniform(low: int, high: int) -> Distribution:
  """An integer in [low, high], both included."""
  _check_range('int_uniform', low, high)
  return Distribution('int_uniform', (int(low), int(high)))


def choice(values: Sequence[Any]) -> Distribution:
  if not values:
    raise UserError('choice([]): give at least one value to choose from.')
  return Distribution('choice', tuple(values))


def _check_range(kind: str, low: float, high: float) -> None:
  if not low <= high:
    raise UserError(f'{kind}({low}, {high}): the low bound must not exceed the high one.')


@dataclasses.dataclass
class Sweep:
  path: str  # the sweep file
  config: str  # absolute path of the base config file
  fixed: dict[str, Any]
  grid: dict[str, list[Any]]
  random: dict[str, Distribution]
  num_samples: int
  random_seed: int
  seeds: list[int]
  slurm: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Trial:
  """One train.py run: the setting (swept overrides) and the seed, named after both."""
  overrides: dict[str, Any]  # swept keys only, in sweep order; `fixed` applies to all trials
  seed: int | None

  @property
  def setting(self) -> str:
    return trial_name(self.overrides)

  @property
  def name(self) -> str:
    seed = {} if self.seed is None else {'seed': self.seed}
    return trial_name(self.overrides | seed)

  def args(self, sweep: Sweep, workdir: str) -> list[str]:
    """train.py's arguments; `workdir` is the sweep's directory."""
    seed = {} if self.seed is None else {'seed': self.seed}
    return ['--config', sweep.config, '--workdir', os.path.join(workdir, self.name),
            *override_flags(sweep.fixed | self.overrides | seed)]


def load_sweep(path: str) -> Sweep:
  """Runs the sweep file's get_sweep() and checks every key and value against the base config."""
  if not os.path.isfile(path):
    raise UserError(f'Sweep file {path} does not exist. Pass a Python file defining get_sweep(), '
                    'such as sweeps/digits_lr.py.')
  module = _import(path, '_resnet_flax_sweep_file')
  if not callable(getattr(module, 'get_sweep', None)):
    raise UserError(f'{path} defines no get_sweep(). It should return a dict with the keys: '
                    + '; '.join(f'{k}: {v}' for k, v in KEYS.items()) + '.')
  try:
    spec = module.get_sweep()
  except UserError:
    raise
  except Exception as e:  # noqa: BLE001 (a bug in the user's file: say where, without a traceback)
    raise UserError(f'get_sweep() in {path} raised {type(e).__name__}: {e}') from None
  if not isinstance(spec, Mapping):
    raise UserError(f'get_sweep() in {path} returned {type(spec).__name__}; return a dict.')
  unknown = sorted(set(spec) - set(KEYS))
  if unknown or 'config' not in spec:
    what = f'has unknown keys {unknown}' if unknown else 'names no base config'
    raise UserError(f'get_sweep() in {path} {what}. Its keys: '
                    + '; '.join(f'{k}: {v}' for k, v in KEYS.items()) + '.')
  for key in ('fixed', 'grid', 'random', 'slurm'):
    if not isinstance(spec.get(key, {}), Mapping):
      raise UserError(f'get_sweep() in {path}: {key} is {spec[key]!r}; give a dict ({KEYS[key]}).')
  for key, values in spec.get('grid', {}).items():
    if not isinstance(values, (list, tuple)):
      raise UserError(f'get_sweep() in {path}: grid key {key} is {values!r}; give a list of the '
                      'values to try.')
  sweep = Sweep(path=path, config=_config_path(spec['config'], path),
                fixed=dict(spec.get('fixed', {})),
                grid={k: list(v) for k, v in spec.get('grid', {}).items()},
                random=dict(spec.get('random', {})), num_samples=int(spec.get('num_samples', 0)),
                random_seed=int(spec.get('random_seed', 0)),
                seeds=[int(s) for s in spec.get('seeds', [])], slurm=dict(spec.get('slurm', {})))
  _check(sweep)
  return sweep


def trials(sweep: Sweep) -> list[Trial]:
  """grid settings x random draws x seeds, seeds innermost; repeated settings run once."""
  grid = [dict(zip(sweep.grid, values)) for values in itertools.product(*sweep.grid.values())]
  rng = random.Random(sweep.random_seed)
  draws = [{k: d.sample(rng) for k, d in sweep.random.items()}
           for _ in range(sweep.num_samples)] if sweep.random else [{}]
  settings = []
  for g, r in itertools.product(grid, draws):
    if g | r not in settings:
      settings.append(g | r)
  seeds = sweep.seeds or [None]
  return [Trial(overrides=s, seed=seed) for s in settings for seed in seeds]


def trial_name(overrides: dict[str, Any]) -> str:
  """'optim.learning_rate=0.05,seed=1': readable and stable; characters a shell or file system
  would trip on become '_', and a hash of the exact overrides keeps such names distinct."""
  raw = ','.join(f'{k}={_name_value(v)}' for k, v in overrides.items()) or 'base'
  name = _NAME_CHARS.sub('_', raw)
  if name != raw or len(name) > _MAX_NAME:
    name = f'{name[:_MAX_NAME]}-{hashlib.sha1(raw.encode()).hexdigest()[:8]}'
  return name


def override_flags(overrides: dict[str, Any]) -> list[str]:
  return [f'--config.{k}={_flag_value(v)}' for k, v in overrides.items()]


def _flag_value(value: Any) -> str:
  if isinstance(value, (tuple, list)):
    return repr(tuple(value))
  return repr(value) if isinstance(value, float) else str(value)


def _name_value(value: Any) -> str:
  if isinstance(value, (tuple, list)):
    return '_'.join(_name_value(v) for v in value)
  return _flag_value(value)


def _import(path: str, name: str) -> Any:
  """Imports a Python file with the repository on sys.path (`from configs import default`)."""
  if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except UserError as e:
    raise UserError(f'{path}: {e}') from None
  except Exception as e:  # noqa: BLE001 (a bug in the user's file: say where, without a traceback)
    raise UserError(f'{path} could not be loaded: {type(e).__name__}: {e}') from None
  return module


def _config_path(config: str, sweep_path: str) -> str:
  """As given if it exists from here, else relative to the repository."""
  for candidate in (config, os.path.join(ROOT, config)):
    if os.path.isfile(candidate):
      return os.path.abspath(candidate)
  raise UserError(f'{sweep_path}: the base config {config} does not exist here or in {ROOT}. '
                  "Name a config file, e.g. 'configs/digits.py'.")


def _check(sweep: Sweep) -> None:
  """Fails now, not in every trial: unknown keys, values of the wrong type, empty sweeps."""
  where = f'Sweep file {sweep.path}'
  for key in ('fixed', 'grid', 'random'):
    if 'seed' in getattr(sweep, key):
      raise UserError(f'{where} sets seed in {key}; list seeds under "seeds" instead, so the '
                      'results average over them.')
  for key, values in sweep.grid.items():
    if not values:
      raise UserError(f'{where}: grid key {key} has no values; give at least one.')
  for key, dist in sweep.random.items():
    if not isinstance(dist, Distribution):
      raise UserError(f'{where}: random key {key} is {dist!r}; use uniform(a, b), '
                      'log_uniform(a, b), int_uniform(a, b) or choice([...]) from '
                      'resnet_flax.sweep.')
  if sweep.random and sweep.num_samples < 1:
    raise UserError(f'{where} has a random search but num_samples is {sweep.num_samples}; set '
                    'num_samples to the number of draws.')
  config = _import(sweep.config, '_resnet_flax_sweep_config').get_config()
  samples = {k: [d.sample(random.Random(0))] for k, d in sweep.random.items()}
  for key, values in [(k, [v]) for k, v in sweep.fixed.items()] + list(sweep.grid.items()) + list(
      samples.items()) + [('seed', sweep.seeds)]:
    for value in values:
      _check_value(config, key, value, sweep)


def _check_value(config: ml_collections.ConfigDict, key: str, value: Any, sweep: Sweep) -> None:
  *parents, leaf = key.split('.')
  node = config
  for part in parents + [leaf]:
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      message = config_help.unknown_override_message(
          ['sweep', f'--config={sweep.config}', f'--config.{key}=0'], KeyError(key))
      raise UserError(f'Sweep file {sweep.path}: {message}')
    parent, node = node, node[part]
  try:
    parent.copy_and_resolve_references()[leaf] = value
  except TypeError as e:
    raise UserError(f'Sweep file {sweep.path}: {key}={value!r} does not fit the config field '
                    f'({e}). Give a value of the field\'s type ({type(node).__name__}).') from None
  from resnet_flax.training import config_rules  # pylint: disable=g-import-not-at-top (jax)
  problem = config_rules.field_problem(key, value)
  if problem:
    raise UserError(f'Sweep file {sweep.path}: {problem}')
