"""Metrics to workdir/metrics.jsonl (one JSON object per line) and TensorBoard, lines to the
console logger (reporting/console.py); process 0 only."""

import json
import os
from typing import Any

import jax

from resnet_flax.reporting.console import console
from resnet_flax.reporting.tensorboard import TensorBoardWriter


class MetricsLog:

  def __init__(self, workdir: str, tensorboard: bool = False):
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self.enabled = jax.process_index() == 0
    self.workdir = workdir
    self.tensorboard_on = tensorboard and self.enabled
    self.tensorboard = None  # created at the first record: a run refused at start writes nothing
    self.console = console()

  def write(self, record: dict[str, Any], line: str | None) -> None:
    """Appends `record` to metrics.jsonl (and TensorBoard) and logs `line` (None: no line)."""
    if not self.enabled:
      return
    with open(self.path, 'a') as f:
      f.write(json.dumps(record) + '\n')
    if self.tensorboard_on:
      self.tensorboard = self.tensorboard or TensorBoardWriter(self.workdir)
      self.tensorboard.record(record)
    if line is not None:
      self.console.info(line)

  def close(self, config: Any = None, final: dict[str, Any] | None = None) -> None:
    """Ends the TensorBoard file, with the run's config and final metrics for the HParams tab."""
    if self.tensorboard:
      if config is not None:
        self.tensorboard.hparams(config, final)
      self.tensorboard.close()
      self.tensorboard = None

  def print(self, line: str) -> None:
    """Logs `line` on process 0 only (the console logger; above any progress bar)."""
    if self.enabled:
      self.console.info(line)

  def read(self) -> list[dict[str, Any]]:
    return read_records(self.path) if os.path.exists(self.path) else []

  def drop_after(self, step: int) -> None:
    """Forgets records past `step`: a resumed run re-logs them exactly once."""
    if not self.enabled:
      return
    kept = [r for r in self.read() if r['step'] <= step]
    tmp = self.path + '.tmp'
    with open(tmp, 'w') as f:
      f.writelines(json.dumps(r) + '\n' for r in kept)
    os.replace(tmp, self.path)  # atomic: a kill leaves the old file or the new one


def read_records(path: str) -> list[dict[str, Any]]:
  """The records of a metrics.jsonl; also read by plots and sweeps while the run still writes it."""
  with open(path) as f:
    lines = [line for line in f if line.strip()]
  records = []
  for i, line in enumerate(lines):
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError:
      if i < len(lines) - 1:
        raise
      # a write cut short (a kill or a full disk): the resumed run rewrites that record
  return records
