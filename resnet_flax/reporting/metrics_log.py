"""Metrics to workdir/metrics.jsonl (one JSON object per line) and to the enabled dashboard
writers (reporting/writer.py: TensorBoard, W&B), lines to the console logger
(reporting/console.py); process 0 only. metrics.jsonl is the source of truth: tests, plots,
sweeps and resumption read it, never a writer's files."""

import json
import os
from collections.abc import Sequence
from typing import Any

import jax

from resnet_flax.reporting.console import console
from resnet_flax.reporting.writer import MetricWriter, WriterFactory


class MetricsLog:

  def __init__(self, workdir: str, writers: Sequence[WriterFactory] = ()):
    """`writers` (writer.writer_factories) are made at the first record, so a run refused at
    start writes nothing; on processes other than 0 never."""
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self.enabled = jax.process_index() == 0
    self.workdir = workdir
    self.factories = list(writers) if self.enabled else []
    self.writers: list[MetricWriter] | None = None
    self.console = console()

  def write(self, record: dict[str, Any], line: str | None) -> None:
    """Appends `record` to metrics.jsonl, hands it to each writer, logs `line` (None: no line)."""
    if not self.enabled:
      return
    with open(self.path, 'a') as f:
      f.write(json.dumps(record) + '\n')
    if self.writers is None:
      self.writers = [make() for make in self.factories]
    for writer in self.writers:
      writer.record(record)
    if line is not None:
      self.console.info(line)

  def close(self, config: Any = None, final: dict[str, Any] | None = None) -> None:
    """Ends the writers, first giving them the run's config and final metrics (when given: a
    finished run; a preempted or failed one closes without). Later calls do nothing."""
    writers, self.writers = self.writers or [], []
    for writer in writers:
      if config is not None:
        writer.hparams(config, final)
      writer.close()

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
