"""The run's console lines go through Python logging: logger 'resnet_flax', level INFO.

Unless the logger already has a handler (one a user added to redirect the lines), `console()`
gives it one that writes each message, as it is, to stdout above any progress bar; the lines
are then the same on a terminal and in a redirected log file. It does not propagate to the root
logger, which absl's handler would print a second time with its own prefix. Silence it with
`logging.getLogger('resnet_flax').setLevel(logging.WARNING)`.
"""

import logging

import tqdm

NAME = 'resnet_flax'


class TqdmHandler(logging.Handler):
  """Writes the bare message with tqdm.write, so an active progress bar stays below it."""

  def emit(self, record: logging.LogRecord) -> None:
    try:
      tqdm.tqdm.write(self.format(record))
    except Exception:  # pylint: disable=broad-except
      self.handleError(record)


def console() -> logging.Logger:
  """The 'resnet_flax' logger, with the stdout handler unless it has handlers already."""
  logger = logging.getLogger(NAME)
  if not logger.handlers:
    logger.addHandler(TqdmHandler())
    logger.propagate = False
    if logger.level == logging.NOTSET:
      logger.setLevel(logging.INFO)
  return logger
