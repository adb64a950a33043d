"""A damaged checkpoint in one line: what could not be read, without orbax's noise.

When a read of a damaged checkpoint fails, orbax closes its asyncio loop while TensorStore
still has reads in flight; each of those completes later on a TensorStore thread and prints
`RuntimeError: Event loop is closed` with its traceback to sys.stderr, dozens of times and
for up to a second after the restore has returned. The failure itself is already reported
(and handled) by the caller, so `drop_stray_loop_tracebacks()` filters exactly those blocks
out of sys.stderr; every other line, the user's logging included, passes through unchanged.

The other reads of such a restore may fail too, in asyncio tasks nobody awaits once the first
failure is raised; when they are collected asyncio logs "Task exception was never retrieved" with
the read's traceback. A filter on the `asyncio` logger drops exactly those records whose
exception was raised in orbax's code; other unretrieved task exceptions are still logged.

`describe(error)` turns TensorStore's error text (a chain of "Error opening/reading ..."
clauses followed by JSON spec dumps) into its innermost clause: which file, what is wrong.
"""

import logging
import os
import re
import sys
import traceback
from typing import Any, TextIO

HEADER = 'Traceback (most recent call last):'
# The last line of the tracebacks dropped: callbacks of reads that outlived their event loop,
# or futures scheduled by orbax's threads during interpreter shutdown.
STRAY = ('RuntimeError: Event loop is closed',
         'RuntimeError: cannot schedule new futures after interpreter shutdown')


def describe(error: BaseException) -> str:
  """`Type: innermost reason`, at most ~300 characters, without TensorStore spec dumps."""
  text = re.sub(r'\s*\[tensorstore_spec.*', '', str(error), flags=re.S)
  clauses = text.split(': Error reading ')
  if len(clauses) > 2:  # "Error opening ... : Error reading <array> ...: Error reading <file>: why"
    text = 'Error reading ' + clauses[-1]
  return f'{type(error).__name__}: {text[:300]}'


class _StrayTracebackFilter:
  """A text stream that passes writes on to `stream`, minus tracebacks ending in STRAY."""

  def __init__(self, stream: TextIO):
    self.stream = stream
    self._block: list[str] | None = None  # the lines of a traceback being held back

  def write(self, text: str) -> int:
    for line in text.splitlines(keepends=True):
      self._line(line)
    return len(text)

  def _line(self, line: str) -> None:
    if self._block is None:
      if line.startswith(HEADER):
        self._block = [line]
      else:
        self.stream.write(line)
      return
    self._block.append(line)
    if not line.endswith('\n') or line[:1].isspace() or line.startswith(HEADER):
      return
    block, self._block = ''.join(self._block), None  # the exception line ends the traceback
    if not line.startswith(STRAY):
      self.stream.write(block)

  def flush(self) -> None:
    self.stream.flush()

  def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding, ...
    return getattr(self.stream, name)


class _UnretrievedReadFilter(logging.Filter):
  """Drops asyncio's "Task exception was never retrieved" for exceptions raised in orbax."""

  def filter(self, record: logging.LogRecord) -> bool:
    error = record.exc_info[1] if record.exc_info else None
    if error is None or not str(record.msg).startswith('Task exception was never retrieved'):
      return True
    return not any(f'{os.sep}orbax{os.sep}' in frame.filename
                   for frame in traceback.extract_tb(error.__traceback__))


_UNRETRIEVED = _UnretrievedReadFilter()


def drop_stray_loop_tracebacks() -> None:
  """Installs the filters on sys.stderr and the asyncio logger (once; they stay, as the stray
  prints come late)."""
  if not isinstance(sys.stderr, _StrayTracebackFilter):
    sys.stderr = _StrayTracebackFilter(sys.stderr)
  if _UNRETRIEVED not in logging.getLogger('asyncio').filters:
    logging.getLogger('asyncio').addFilter(_UNRETRIEVED)
