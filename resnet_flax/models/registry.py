"""Models by name: `create_model('resnet20', num_classes=10)`, `list_models()`."""

import dataclasses
import difflib
import re
from typing import Any, Callable

import flax.linen as nn

from resnet_flax.errors import UserError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str, factory: Callable[..., nn.Module]) -> None:
  """Registers `factory(num_classes=..., **overrides) -> nn.Module` under `name`."""
  if name in _MODELS:
    raise ValueError(f'model {name!r} is registered twice')
  _MODELS[name] = factory


def list_models() -> list[str]:
  """Registered names in natural order (resnet20 before resnet110)."""
  return sorted(_MODELS, key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', n)])


def create_model(name: str, *, num_classes: int, block_options: dict[str, Any] | None = None,
                 **overrides: Any) -> nn.Module:
  """Builds a registered model.

  `overrides` replace fields of the module (e.g. dtype, bn_momentum); `block_options`
  are merged into the model's own block options (e.g. {'dropout_rate': 0.3}).
  """
  if name not in _MODELS:
    close = difflib.get_close_matches(name, _MODELS, n=3)
    hint = f' Did you mean {" or ".join(map(repr, close))}?' if close else ''
    raise UserError(
        f'Unknown model {name!r}.{hint} Set --config.model.name to one of: '
        f'{", ".join(list_models())} (`python -m resnet_flax.models --list` prints them).')
  model = _MODELS[name](num_classes=num_classes)
  unknown = sorted(set(overrides) - _field_names(model))
  if unknown:
    raise UserError(
        f'Model {name!r} has no field(s) {", ".join(unknown)}. Its fields are: '
        f'{", ".join(sorted(_field_names(model)))}.')
  if block_options:
    block_fields = _field_names(model.block_cls)
    unsupported = sorted(set(block_options) - block_fields)
    if unsupported:
      raise UserError(
          f'The blocks of {name!r} have no option {", ".join(unsupported)} (their options: '
          f'{", ".join(sorted(block_fields - _BLOCK_ARGS))}). Leave it at its default for '
          'this model.')
    overrides['block_options'] = {**(model.block_options or {}), **block_options}
  return model.clone(**overrides)


_BLOCK_ARGS = {'features', 'strides', 'shortcut_cls', 'norm', 'dtype', 'conv'}


def _field_names(module_or_cls: Any) -> set[str]:
  cls = getattr(module_or_cls, 'func', module_or_cls)  # a functools.partial of a block class
  return {f.name for f in dataclasses.fields(cls)} - {'parent', 'name'}
