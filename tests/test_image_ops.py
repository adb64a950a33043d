"""Each policy op against torchvision.transforms.functional on the same uint8 images.

torchvision runs in a subprocess under .venv-torchvision (`make torchvision-venv`); the tests
skip where it is absent. Each case is an op at a magnitude the policies draw (both signs),
called through torchvision's own autoaugment._apply_op on uint8 tensors (the policies' path).
Point and blend ops agree exactly. Geometric ops agree exactly on every case here too; the one
place they could differ is a source position within float32 rounding of a half pixel, where
the nearest-neighbour pick depends on the order of float32 operations (GEOMETRIC_TOLERANCE).
"""

import os
import subprocess

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from resnet_flax.data import policies

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TV_PYTHON = os.path.join(ROOT, '.venv-torchvision', 'bin', 'python')
WORKER = os.path.join(ROOT, 'tests', 'torchvision_worker.py')
SIZE = 32
GEOMETRIC_TOLERANCE = 0.002  # share of pixels allowed to differ in a geometric case

needs_torchvision = pytest.mark.skipif(
    not os.path.exists(TV_PYTHON), reason='torchvision (.venv-torchvision) is absent: '
    '`make torchvision-venv`')


def test_images() -> np.ndarray:
  """Noise, smooth gradients, a low-contrast image and one with a flat channel."""
  rng = np.random.default_rng(0)
  noise = rng.integers(0, 256, (3, SIZE, SIZE, 3))
  y, x = np.mgrid[:SIZE, :SIZE]
  smooth = np.stack([np.stack([(x * 8 + 20 * c) % 256, (y * 7 + x * 3) % 256,
                               128 + 100 * np.sin((x + y + c) / 5)], -1) for c in range(3)])
  dim = 100 + rng.integers(0, 20, (1, SIZE, SIZE, 3))
  flat = rng.integers(0, 256, (1, SIZE, SIZE, 3))
  flat[..., 1] = 77
  return np.concatenate([noise, smooth, dim, flat]).astype(np.uint8)


test_images.__test__ = False  # a helper, not a test


def cases() -> list[tuple[str, float]]:
  """(op, magnitude): magnitudes the policies draw, both signs, a few bins of each table."""
  out = []
  for name in policies.OPS:
    values = set()
    for wide, bins, picks in ((False, 10, (1, 5, 9)), (False, 31, (9, 15)), (True, 31, (7, 15, 30))):
      table = policies.magnitudes(name, bins, SIZE, SIZE, wide)
      if table is not None:
        values |= {float(table[i]) for i in picks}
    if name in policies.SIGNED:
      values |= {-v for v in values}
    out += [(name, v) for v in sorted(values or {0.0})]
  return out


_apply = jax.jit(jax.vmap(policies.apply_row, (0, None)))


def ours(images: np.ndarray, name: str, magnitude: float) -> np.ndarray:
  r = jnp.asarray(policies.row(name, magnitude, SIZE, SIZE))
  return np.asarray(_apply(jnp.asarray(images, jnp.float32), r)).astype(np.uint8)


@pytest.fixture(scope='module')
def torchvision_outputs(tmp_path_factory):
  directory = tmp_path_factory.mktemp('tv')
  images, todo = test_images(), cases()
  np.savez(directory / 'in.npz', images=images, names=np.array([n for n, _ in todo]),
           magnitudes=np.array([m for _, m in todo], np.float64))
  proc = subprocess.run([TV_PYTHON, WORKER, 'ops', str(directory / 'in.npz'),
                         str(directory / 'out.npz')], capture_output=True, text=True)
  assert proc.returncode == 0, proc.stderr
  out = np.load(directory / 'out.npz')
  return images, todo, out['tensor'], out['pil']


@needs_torchvision
@pytest.mark.parametrize('op', policies.OPS)
def test_op_equals_torchvision_on_uint8_tensors(torchvision_outputs, op):
  images, todo, expected, _ = torchvision_outputs
  for (name, magnitude), want in zip(todo, expected):
    if name != op:
      continue
    got = ours(images, name, magnitude)
    differs = (got != want).mean()
    if op in policies.GEOMETRIC:
      assert differs <= GEOMETRIC_TOLERANCE, (name, magnitude, differs)
    else:
      assert differs == 0, (name, magnitude, differs, np.abs(got.astype(int) - want).max())
