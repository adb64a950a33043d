"""Rule constructors for the config table (training/config_rules.py): one value's type and range.

A `Rule` says in words what a field allows, decides whether a value is allowed, and lists
values it must refuse (wrong types and the edges of its range), which the tests feed to every
field so that a rule too lax for its own description fails them.
"""

import dataclasses
import difflib
import math
from collections.abc import Callable, Sequence
from typing import Any


@dataclasses.dataclass(frozen=True)
class Rule:
  allowed: str  # completes "--config.x=value must be ...", e.g. 'at least 1 (a whole number)'
  accepts: Callable[[Any], bool]
  refused: tuple[Any, ...]  # values `accepts` must refuse: wrong types, just out of range
  choices: Callable[[], Sequence[str]] | None = None  # one_of's names, for "did you mean"

  def problem(self, value: Any) -> str | None:
    """None when `value` is allowed, else what is allowed (and the closest name, if any)."""
    if self.accepts(value):
      return None
    hint = ''
    if self.choices is not None and isinstance(value, str):
      close = difflib.get_close_matches(value, list(self.choices()), n=1)
      hint = f' (did you mean {close[0]!r}?)' if close else ''
    return f'{self.allowed}{hint}'


# Values of the wrong type for every rule; each rule adds the ones its own type refuses.
_NOT_A_NUMBER = ('abc', None, (1,), [], {})


def _is_int(value: Any) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
  return (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value))


def integer(minimum: int, what: str = '') -> Rule:
  """A whole number >= `minimum`; `what` says what the smallest values mean (e.g. '0: off')."""
  note = f'; {what}' if what else ''
  return Rule(f'at least {minimum} (a whole number{note})',
              lambda v: _is_int(v) and v >= minimum,
              (minimum - 1, minimum - 8, minimum + 0.5, True, float(minimum), *_NOT_A_NUMBER))


def positive_int(what: str = '') -> Rule:
  return integer(1, what)


def non_negative_int(what: str = '') -> Rule:
  return integer(0, what)


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False, what: str = '') -> Rule:
  """A finite int or float in the range; `*_open` leaves that end out."""
  def accepts(v: Any) -> bool:
    if not _is_number(v):
      return False
    above = low is None or (v > low if low_open else v >= low)
    below = high is None or (v < high if high_open else v <= high)
    return above and below
  if low is not None and high is not None:
    words = (f'a number from {low} {"(excluded) " if low_open else ""}to {high}'
             f'{" (excluded)" if high_open else ""}')
  elif low is not None:
    words = f'a number {"greater than" if low_open else "of at least"} {low}'
  else:
    words = f'a number {"below" if high_open else "of at most"} {high}'
  edges = [x for x in (low, high) if x is not None]
  outside = tuple(x for x in ((low - 0.5) if low is not None else None,
                              (high + 0.5) if high is not None else None,
                              low if low is not None and low_open else None,
                              high if high is not None and high_open else None) if x is not None)
  refused = (*outside, float('nan'), float('inf') if high is None else float('-inf'), True,
             *[str(e) for e in edges], *_NOT_A_NUMBER)
  return Rule(f'{words}{f" ({what})" if what else ""}', accepts, refused)


def non_negative(what: str = '') -> Rule:
  return number(0.0, what=what)


def positive(what: str = '') -> Rule:
  return number(0.0, low_open=True, what=what)


def probability(what: str = '') -> Rule:
  return number(0.0, 1.0, what=what)


def one_of(*names: str, lazy: Callable[[], Sequence[str]] | None = None, what: str = '') -> Rule:
  """One of `names` (or of `lazy()`, looked up when checked: e.g. the registered models)."""
  choices = lazy or (lambda: names)

  def accepts(v: Any) -> bool:
    return isinstance(v, str) and v in choices()
  shown = ', '.join(map(repr, names)) if names else None
  allowed = f'one of {shown}' if shown else 'a registered name'
  allowed += f' ({what})' if what else ''
  return Rule(allowed, accepts, ('', 'no such name', 1, True, None, ('a',)), choices=choices)


def boolean() -> Rule:
  return Rule('True or False', lambda v: isinstance(v, bool), (0, 1, 'True', 'yes', None, ()))


def string(nonempty: bool = False, what: str = '') -> Rule:
  def accepts(v: Any) -> bool:
    return isinstance(v, str) and (bool(v) or not nonempty)
  words = 'a non-empty string' if nonempty else 'a string'
  return Rule(f'{words}{f" ({what})" if what else ""}', accepts,
              (1, 1.5, True, None, ('a',), *([''] if nonempty else [])))


def increasing_ints(example: str) -> Rule:
  """A tuple (or list) of strictly increasing whole numbers >= 0, e.g. milestones."""
  def accepts(v: Any) -> bool:
    return (isinstance(v, (tuple, list)) and all(_is_int(x) and x >= 0 for x in v)
            and all(b > a for a, b in zip(v, v[1:])))
  return Rule(f'a tuple of strictly increasing whole numbers of at least 0, e.g. {example}',
              accepts, ('abc', ('abc',), (5, 3), (3, 3), (-1, 5), (1.5,), (True,), 5, None))


def numbers(low: float, high: float | None = None, *, low_open: bool = False,
            what: str = '') -> Rule:
  """A tuple (or list) of numbers, each in the range of number(low, high, low_open=...)."""
  each = number(low, high, low_open=low_open)

  def accepts(v: Any) -> bool:
    return isinstance(v, (tuple, list)) and all(each.accepts(x) for x in v)
  return Rule(f'a tuple of numbers, each {each.allowed.removeprefix("a number ")}'
              f'{f" ({what})" if what else ""}', accepts,
              ('abc', ('abc',), 0.5, None, *[(x,) for x in each.refused[:2]], (float('nan'),)))
