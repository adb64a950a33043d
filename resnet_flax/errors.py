"""The one exception type that reaches a user as a message instead of a traceback."""


class UserError(Exception):
  """A problem the user can fix (bad config, missing data, ...).

  The message is a full paragraph: what is wrong and what to do about it.
  `train.py` prints it without a traceback and exits with status 2.
  """
