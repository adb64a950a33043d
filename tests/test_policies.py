"""The policies' sampling against torchvision's AutoAugment, RandAugment and TrivialAugmentWide.

torchvision's classes run under .venv-torchvision with _apply_op replaced by a recorder; the
ops and signed magnitudes they pass to it over many calls are counted and compared with the
rows our sampler draws: the same (op, magnitude) categories on both sides (an op missing or a
magnitude bin off by one fails here), each category's count within 5 standard deviations of
the other side's, and the same distribution of the number of ops applied per image.
"""

import collections
import json
import math
import os
import subprocess

import jax
import numpy as np
import pytest

from resnet_flax.data import policies

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TV_PYTHON = os.path.join(ROOT, '.venv-torchvision', 'bin', 'python')
DRAWS, N, M = 10_000, 2, 9


def ours(policy: str) -> list[list[tuple[str, float]]]:
  keys = jax.random.split(jax.random.key(0), DRAWS)
  rows = np.asarray(jax.jit(lambda k: policies.sample(policy, k, 32, 32, N, M))(keys))
  return [[(policies.OPS[int(r[0])], float(r[1])) for r in image if r[0] >= 0] for image in rows]


@pytest.fixture(scope='module')
def torchvision_draws(tmp_path_factory):
  if not os.path.exists(TV_PYTHON):
    pytest.skip('torchvision (.venv-torchvision) is absent: `make torchvision-venv`')
  path = tmp_path_factory.mktemp('tv') / 'draws.json'
  proc = subprocess.run([TV_PYTHON, os.path.join(ROOT, 'tests', 'torchvision_worker.py'),
                         'sample', str(path), str(DRAWS), str(N), str(M)],
                        capture_output=True, text=True)
  assert proc.returncode == 0, proc.stderr
  return json.loads(path.read_text())


def counts(draws, reference=None):
  """(op, magnitude) counts; magnitudes within float32 rounding of a `reference` one are
  counted as it (torch's float32 linspace may differ from the exact one in the last bit)."""
  known = collections.defaultdict(set)
  for name, value in reference or ():
    known[name].add(value)
  out = collections.Counter()
  for image in draws:
    for name, value in image:
      close = [k for k in known[name] if abs(k - value) <= 1e-5 * max(1.0, abs(k))]
      out[(name, close[0] if close else value)] += 1
  return out


@pytest.mark.slow  # torchvision's classes called 30,000 times: over ten seconds
@pytest.mark.parametrize('policy', policies.POLICIES[1:])
def test_ops_and_magnitudes_are_drawn_as_torchvision_draws_them(torchvision_draws, policy):
  mine = ours(policy)
  theirs = torchvision_draws[policy]
  a = counts(mine)
  b = counts(theirs, reference=a)
  assert set(a) == set(b), (sorted(set(a) - set(b)), sorted(set(b) - set(a)))
  for key in a:
    assert abs(a[key] - b[key]) <= 5 * math.sqrt(a[key] + b[key]), (key, a[key], b[key])
  lengths_a = collections.Counter(len(image) for image in mine)
  lengths_b = collections.Counter(len(image) for image in theirs)
  assert set(lengths_a) == set(lengths_b)
  for length in lengths_a:
    assert abs(lengths_a[length] - lengths_b[length]) <= 5 * math.sqrt(
        lengths_a[length] + lengths_b[length]), (length, lengths_a, lengths_b)
