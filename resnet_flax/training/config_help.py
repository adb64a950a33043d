"""Clear messages for config mistakes made on the command line."""

import difflib
import importlib.util
import re
from typing import Any

import ml_collections

from resnet_flax.errors import fail

_OVERRIDE = re.compile(r'^--config\.([\w.]+)')


def unknown_override_message(argv: list[str], error: Exception) -> str:
  """Names the override that matches no field, close matches and the valid keys at that level."""
  config = _config_file_value(argv)
  for arg in argv[1:]:
    match = _OVERRIDE.match(arg)
    if not match or config is None:
      continue
    node, path = config, match.group(1).split('.')
    for depth, key in enumerate(path):
      if not isinstance(node, ml_collections.ConfigDict) or key not in node:
        parent = '.'.join(['config', *path[:depth]])
        keys = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
        close = difflib.get_close_matches(key, keys, n=1)
        hint = f' Did you mean {parent}.{close[0]}?' if close else ''
        return (f'{arg.split("=")[0]} matches no config field: {parent} has no key {key!r}.'
                f'{hint} Valid keys of {parent}: {", ".join(keys)}. The config is locked so '
                'that a misspelt override fails here instead of being silently ignored.')
      node = node[key]
  return f'a --config override matches no config field ({error}).'


def _config_file_value(argv: list[str]) -> ml_collections.ConfigDict | None:
  """Loads the --config file named in argv (default configs/default.py) without flag parsing."""
  path = 'configs/default.py'
  for i, arg in enumerate(argv):
    if arg.startswith('--config='):
      path = arg.split('=', 1)[1]
    elif arg == '--config' and i + 1 < len(argv):
      path = argv[i + 1]
  try:
    spec = importlib.util.spec_from_file_location('_config_for_help', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()
  except Exception:  # pylint: disable=broad-except
    return None


def loaded_config(flag: Any) -> ml_collections.ConfigDict:
  """The parsed config, or exit with a clear message when the file could not be loaded."""
  value = flag.value
  if isinstance(value, ml_collections.ConfigDict):
    return value
  fail(f'could not load the config file: {value._error}. Pass --config with the path of '  # pylint: disable=protected-access
       'a config file such as configs/default.py or configs/digits.py.')


def set_fields(config: ml_collections.ConfigDict,
               values: dict[str, Any]) -> ml_collections.ConfigDict:
  """`config` with dotted keys set ({'optim.learning_rate': 0.1}), as --config.x=y would."""
  for key, value in values.items():
    node = config
    *parents, leaf = key.split('.')
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config
