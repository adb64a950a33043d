"""The one exception type that reaches a user as a message instead of a traceback."""

import sys
from typing import Callable, NoReturn


class UserError(Exception):
  """A problem the user can fix (bad config, missing data, ...).

  The message is a full paragraph: what is wrong and what to do about it.
  `train.py` prints it without a traceback and exits with status 2.
  """


def fail(message: str) -> NoReturn:
  """Ends a command line program: `error: message` on stderr, exit status 2."""
  print(f'error: {message}', file=sys.stderr)
  sys.exit(2)


def exit_on_user_error(main: Callable[[], None]) -> None:
  """Runs a command-line `main`; a UserError becomes `error: ...` on stderr and exit status 2."""
  try:
    main()
  except UserError as e:
    fail(str(e))
