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


def cases(all_bins: bool = False) -> list[tuple[str, float]]:
  """(op, magnitude): magnitudes the policies draw, both signs; a few bins of each table, or
  every bin of AutoAugment's 10 and RandAugment's and TrivialAugmentWide's 31."""
  out = []
  for name in policies.OPS:
    values = set()
    for wide, bins, picks in ((False, 10, (1, 5, 9)), (False, 31, (9, 15)),
                              (True, 31, (7, 15, 30))):
      table = policies.magnitudes(name, bins, SIZE, SIZE, wide)
      if table is not None:
        values |= {float(table[i]) for i in (range(bins) if all_bins else picks)}
    if name in policies.SIGNED:
      values |= {-v for v in values}
    out += [(name, v) for v in sorted(values or {0.0})]
  return out


_apply = jax.jit(jax.vmap(policies.apply_row, (0, None)))


def ours(images: np.ndarray, name: str, magnitude: float) -> np.ndarray:
  r = jnp.asarray(policies.row(name, magnitude, SIZE, SIZE))
  return np.asarray(_apply(jnp.asarray(images, jnp.float32), r)).astype(np.uint8)


def torchvision(directory, todo, pil=False):
  """torchvision's outputs for each case of `todo` on test_images(): (tensor path, PIL path)."""
  np.savez(directory / 'in.npz', images=test_images(), names=np.array([n for n, _ in todo]),
           magnitudes=np.array([m for _, m in todo], np.float64))
  proc = subprocess.run([TV_PYTHON, WORKER, 'ops', str(directory / 'in.npz'),
                         str(directory / 'out.npz'), *(['pil'] if pil else [])],
                        capture_output=True, text=True)
  assert proc.returncode == 0, proc.stderr
  out = np.load(directory / 'out.npz')
  return out['tensor'], out['pil']


@pytest.fixture(scope='module')
def torchvision_outputs(tmp_path_factory):
  return torchvision(tmp_path_factory.mktemp('tv'), cases())[0]


@needs_torchvision
@pytest.mark.parametrize('op', policies.OPS)
def test_op_equals_torchvision_on_uint8_tensors(torchvision_outputs, op):
  images = test_images()
  for (name, magnitude), want in zip(cases(), torchvision_outputs):
    if name != op:
      continue
    got = ours(images, name, magnitude)
    differs = (got != want).mean()
    if op in policies.GEOMETRIC:
      assert differs <= GEOMETRIC_TOLERANCE, (name, magnitude, differs)
    else:
      assert differs == 0, (name, magnitude, differs, np.abs(got.astype(int) - want).max())


@needs_torchvision
@pytest.mark.slow  # every magnitude bin of every table, and the PIL path: about a minute
def test_every_bin_equals_torchvision_and_how_far_pil_is(tmp_path, capsys):
  """Every (op, bin, sign) the policies can draw; prints the share of pixels where
  torchvision's PIL path differs from its tensor path (rounding instead of truncation in the
  blends, PIL's own affine sampling), for the record."""
  images, todo = test_images(), cases(all_bins=True)
  tensor, pil = torchvision(tmp_path, todo, pil=True)
  worst, pil_share = {}, {}
  for (name, magnitude), want, other in zip(todo, tensor, pil):
    worst[name] = max(worst.get(name, 0.0), float((ours(images, name, magnitude) != want).mean()))
    pil_share.setdefault(name, []).append(float((other != want).mean()))
  with capsys.disabled():
    for name in policies.OPS:
      print(f'\n{name}: {len(pil_share[name])} cases, ours vs tensor path: worst share '
            f'{worst[name]:.4f}; PIL vs tensor path: mean {np.mean(pil_share[name]):.4f}, '
            f'worst {max(pil_share[name]):.4f}', end='')
  for name, share in worst.items():
    assert share <= (GEOMETRIC_TOLERANCE if name in policies.GEOMETRIC else 0.0), (name, share)
