"""A PNG grid of what each augmentation policy does: rows are policies (a few draws each),
columns a few scikit-learn digits and synthetic colour images.

  python -m resnet_flax.augment_preview --out policies.png [--draws 2] [--policies randaugment]
      [--randaugment_n 2 --randaugment_m 9]

The same ops as training (data/policies.py, on uint8 values, no crop, flip or cutout), each
cell with its own key, so a researcher sees the range of images a policy produces.
"""

import argparse

import jax
import numpy as np

from resnet_flax.data import policies

SIZE = 32
_apply = jax.jit(policies.apply, static_argnums=(0, 3, 4))


def digit_images(count: int) -> np.ndarray:
  """`count` scikit-learn digits, 8x8 upscaled bilinearly to 32x32, gray tiled to RGB."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  small = np.round(load_digits().images[:count] * (255.0 / 16.0)).astype(np.uint8)
  big = np.stack([np.asarray(Image.fromarray(im).resize((SIZE, SIZE), Image.BILINEAR))
                  for im in small])
  return np.repeat(big[..., None], 3, axis=-1)


def synthetic_images(count: int) -> np.ndarray:
  """Colour gradients with a disc and a bar: shapes and colours that each op visibly moves."""
  y, x = np.mgrid[:SIZE, :SIZE].astype(np.float64)
  out = []
  for i in range(count):
    base = np.stack([x * 6 + 40 * i, y * 5 + 30, 200 - x * 3 - 20 * i], -1)
    disc = (y - 12 - 2 * i) ** 2 + (x - 14 + 2 * i) ** 2 < 36
    base[disc] = (250, 220 - 50 * i, 40 + 60 * i)
    base[24:28, 4 + 3 * i:26] = (20, 20, 120)
    out.append(np.clip(base, 0, 255))
  return np.stack(out).astype(np.uint8)


def preview(images: np.ndarray, draws: int, randaugment_n: int = 2, randaugment_m: int = 9,
            seed: int = 0, names: tuple[str, ...] = policies.POLICIES[1:]
            ) -> dict[str, list[np.ndarray]]:
  """{policy: [a (N, H, W, C) uint8 batch per draw]}; 'none' once, the input."""
  out = {'none': [images]}
  for index, policy in enumerate(names):
    out[policy] = []
    for draw in range(draws):
      key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), index), draw)
      keys = jax.random.split(key, len(images))
      batch = _apply(policy, jax.numpy.asarray(images, jax.numpy.float32), keys, randaugment_n,
                     randaugment_m)
      out[policy].append(np.asarray(batch).astype(np.uint8))
  return out


def write_grid(rows: dict[str, list[np.ndarray]], path: str) -> str:
  """The grid as a PNG at `path` (matplotlib, no pyplot state)."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  labelled = [(name if i == 0 else '', batch) for name, batches in rows.items()
              for i, batch in enumerate(batches)]
  columns = len(labelled[0][1])
  fig = Figure(figsize=(1.1 * columns + 1.6, 1.1 * len(labelled)), layout='constrained')
  axes = fig.subplots(len(labelled), columns, squeeze=False)
  for r, (name, batch) in enumerate(labelled):
    for c, image in enumerate(batch):
      axes[r, c].imshow(image, interpolation='nearest')
      axes[r, c].set_xticks([])
      axes[r, c].set_yticks([])
    axes[r, 0].set_ylabel(name.replace('_', '\n'), fontsize=8)
  fig.savefig(path, dpi=100)
  return path


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--out', default='policies.png', help='the PNG to write')
  parser.add_argument('--draws', type=int, default=2, help='rows per policy')
  parser.add_argument('--digits', type=int, default=4, help='digit columns')
  parser.add_argument('--synthetic', type=int, default=4, help='synthetic colour columns')
  parser.add_argument('--policies', default=','.join(policies.POLICIES[1:]),
                      help='comma-separated, from ' + ', '.join(policies.POLICIES[1:]))
  parser.add_argument('--randaugment_n', type=int, default=2)
  parser.add_argument('--randaugment_m', type=int, default=9)
  args = parser.parse_args(argv)
  images = np.concatenate([digit_images(args.digits), synthetic_images(args.synthetic)])
  names = tuple(args.policies.split(','))
  unknown = sorted(set(names) - set(policies.POLICIES[1:]))
  if unknown:
    parser.error(f'--policies: unknown {", ".join(unknown)}')
  rows = preview(images, args.draws, args.randaugment_n, args.randaugment_m, names=names)
  print(f'wrote {write_grid(rows, args.out)}')


if __name__ == '__main__':
  main()
