"""checkpoints/quiet: a damaged checkpoint's failed reads print no tracebacks, other errors do."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Two asyncio tasks fail and are never awaited, as the other reads of a failed restore are: one
# raises in code under an orbax/ folder, one elsewhere. asyncio logs both when they are collected.
WORKER = r'''
import asyncio, gc, logging, os
from resnet_flax.checkpoints import quiet
quiet.drop_stray_loop_tracebacks()
logging.basicConfig()
namespace = {}
exec(compile('async def read():\n  raise ValueError("DATA_LOSS: a damaged chunk")\n',
             os.path.join(os.sep, 'site', 'orbax', 'checkpoint', 'serialization.py'), 'exec'),
     namespace)
async def other():
  raise KeyError('a bug of ours')
async def main():
  tasks = [asyncio.ensure_future(namespace['read']()), asyncio.ensure_future(other())]
  await asyncio.sleep(0.01)
  del tasks
  gc.collect()
asyncio.run(main())
gc.collect()
'''


def test_unretrieved_orbax_read_errors_are_dropped_and_others_kept():
  err = subprocess.run([sys.executable, '-c', WORKER], env={**os.environ, 'PYTHONPATH': ROOT},
                       capture_output=True, text=True, timeout=120, check=True).stderr
  assert 'a bug of ours' in err and 'Task exception was never retrieved' in err, err
  assert 'DATA_LOSS' not in err, err
