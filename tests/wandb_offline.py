"""Reads back what an offline W&B run wrote: the records of its run-<id>.wandb file.

wandb (0.31) has no Python reader of its own any more (its core is a Go binary), so this reads
the file's framing directly: a 7-byte header (':W&B', magic, version), then 32 KiB blocks of
LevelDB-log chunks (crc32, length, type: 1 full, 2 first, 3 middle, 4 last), each whole record
a protobuf `Record` of wandb.proto.wandb_internal_pb2.
"""

import glob
import json
import os
import struct
from collections.abc import Iterator
from typing import Any

BLOCK = 32 * 1024
HEADER = struct.Struct('<4sHB')
CHUNK = struct.Struct('<IHB')


def run_files(wandb_dir: str) -> list[str]:
  """Every offline run's .wandb file under `wandb_dir` (WANDB_DIR), oldest run first."""
  return sorted(glob.glob(os.path.join(wandb_dir, 'wandb', 'offline-run-*', 'run-*.wandb')))


def records(path: str) -> Iterator[Any]:
  from wandb.proto import wandb_internal_pb2  # pylint: disable=import-outside-toplevel
  with open(path, 'rb') as f:
    data = f.read()
  ident, _magic, _version = HEADER.unpack_from(data)
  assert ident == b':W&B', f'{path} is not a W&B transaction log'
  pos, pieces = HEADER.size, b''
  while pos + CHUNK.size <= len(data):
    left = BLOCK - pos % BLOCK
    _crc, length, kind = CHUNK.unpack_from(data, pos) if left >= CHUNK.size else (0, 0, 0)
    if kind == 0:  # a block's zero padding
      pos += left
      continue
    pieces += data[pos + CHUNK.size:pos + CHUNK.size + length]
    pos += CHUNK.size + length
    if kind in (1, 4):
      record = wandb_internal_pb2.Record()
      record.ParseFromString(pieces)
      pieces = b''
      yield record


def _key(item: Any) -> str:
  return item.key or '/'.join(item.nested_key)


def read_run(path: str) -> dict[str, Any]:
  """{'id', 'project', 'config': {key: value}, 'history': [{key: value}], 'summary': {...}}."""
  run: dict[str, Any] = {'config': {}, 'history': [], 'summary': {}}
  for record in records(path):
    kind = record.WhichOneof('record_type')
    if kind == 'run':
      run['id'], run['project'] = record.run.run_id, record.run.project
      run['config'] |= {_key(i): json.loads(i.value_json) for i in record.run.config.update}
    elif kind == 'config':
      run['config'] |= {_key(i): json.loads(i.value_json) for i in record.config.update}
    elif kind == 'history':
      run['history'].append({_key(i): json.loads(i.value_json) for i in record.history.item})
    elif kind == 'summary':
      run['summary'] |= {_key(i): json.loads(i.value_json) for i in record.summary.update}
  return run
