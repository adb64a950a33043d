"""Nothing in the repository points outside it: a user's clone has no `../shared` folder, so the
facts the code cites live in docs/reference.md and the measurements in benchmarks/NOTES.md."""

import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THIS_FILE = os.path.relpath(os.path.abspath(__file__), ROOT)
NEEDLE = b'../' + b'shared'  # split so that this file does not spell it


def tracked_files():
  try:
    out = subprocess.run(['git', 'ls-files', '-z'], cwd=ROOT, check=True, capture_output=True)
  except (OSError, subprocess.CalledProcessError):
    pytest.skip('not a git checkout')
  return [p for p in out.stdout.decode().split('\0') if p]


def test_no_tracked_file_refers_to_the_shared_folder():
  offenders = []
  for path in tracked_files():
    full = os.path.join(ROOT, path)
    if path == THIS_FILE or not os.path.isfile(full):
      continue
    with open(full, 'rb') as f:
      for number, line in enumerate(f, 1):
        if NEEDLE in line:
          offenders.append(f'{path}:{number}')
  assert not offenders, ('these refer to ../shared, which a clone of the repository lacks; cite '
                         'docs/reference.md or benchmarks/NOTES.md instead: ' + ', '.join(offenders))
