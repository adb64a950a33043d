"""AutoAugment (CIFAR-10 policy), RandAugment and TrivialAugmentWide, sampled as torchvision does.

Every op a policy can apply, with each magnitude and sign it can draw, is one row of a table
computed on the host in float64, as torchvision computes it from the magnitude, then stored
as float32 (the affine grid matrix, the blend ratio, the posterize bits, the solarize
threshold). Per image and stage the policy draws one row from its own key and applies it
(`apply_row`), so the draws follow torchvision's classes: AutoAugment picks one of 25
sub-policies and applies each of its two ops with its probability, RandAugment N ops uniformly
at magnitude M of 31 bins, TrivialAugmentWide one op and one of 31 bins uniformly; signed ops
are negated with probability 1/2. Geometric ops fill with 0 (the classes' default fill=None).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from resnet_flax.data import image_ops

POLICIES = ('none', 'autoaugment_cifar10', 'randaugment', 'trivialaugment')
NUM_BINS = 31  # RandAugment's and TrivialAugmentWide's magnitude bins (torchvision's default)

OPS = ('Identity', 'ShearX', 'ShearY', 'TranslateX', 'TranslateY', 'Rotate', 'Brightness',
       'Color', 'Contrast', 'Sharpness', 'Posterize', 'Solarize', 'AutoContrast', 'Equalize',
       'Invert')
GEOMETRIC = ('ShearX', 'ShearY', 'TranslateX', 'TranslateY', 'Rotate')
BLENDS = ('Brightness', 'Color', 'Contrast', 'Sharpness')
SIGNED = GEOMETRIC + BLENDS

# AutoAugmentPolicy.CIFAR10: (op, probability, magnitude bin of 10), two ops per sub-policy.
AUTOAUGMENT_CIFAR10 = (
    (('Invert', 0.1, None), ('Contrast', 0.2, 6)),
    (('Rotate', 0.7, 2), ('TranslateX', 0.3, 9)),
    (('Sharpness', 0.8, 1), ('Sharpness', 0.9, 3)),
    (('ShearY', 0.5, 8), ('TranslateY', 0.7, 9)),
    (('AutoContrast', 0.5, None), ('Equalize', 0.9, None)),
    (('ShearY', 0.2, 7), ('Posterize', 0.3, 7)),
    (('Color', 0.4, 3), ('Brightness', 0.6, 7)),
    (('Sharpness', 0.3, 9), ('Brightness', 0.7, 9)),
    (('Equalize', 0.6, None), ('Equalize', 0.5, None)),
    (('Contrast', 0.6, 7), ('Sharpness', 0.6, 5)),
    (('Color', 0.7, 7), ('TranslateX', 0.5, 8)),
    (('Equalize', 0.3, None), ('AutoContrast', 0.4, None)),
    (('TranslateY', 0.4, 3), ('Sharpness', 0.2, 6)),
    (('Brightness', 0.9, 6), ('Color', 0.2, 8)),
    (('Solarize', 0.5, 2), ('Invert', 0.0, None)),
    (('Equalize', 0.2, None), ('AutoContrast', 0.6, None)),
    (('Equalize', 0.2, None), ('Equalize', 0.6, None)),
    (('Color', 0.9, 9), ('Equalize', 0.6, None)),
    (('AutoContrast', 0.8, None), ('Solarize', 0.2, 8)),
    (('Brightness', 0.1, 3), ('Color', 0.7, 0)),
    (('Solarize', 0.4, 5), ('AutoContrast', 0.9, None)),
    (('TranslateY', 0.9, 9), ('TranslateY', 0.7, 9)),
    (('AutoContrast', 0.9, None), ('Solarize', 0.8, 3)),
    (('Equalize', 0.8, None), ('Invert', 0.1, None)),
    (('TranslateY', 0.7, 9), ('AutoContrast', 0.9, None)),
)

# A row: [op index (-1: not applied), signed magnitude, kind, grid matrix (6), ratio,
# 1 - ratio, posterize bits, solarize threshold].
_KINDS = ('identity', 'affine', 'Brightness', 'Color', 'Contrast', 'Sharpness', 'Posterize',
          'Solarize', 'AutoContrast', 'Equalize', 'Invert')
ROW = 13


def magnitudes(name: str, num_bins: int, height: int, width: int, wide: bool) -> np.ndarray | None:
  """The op's magnitude bins (torchvision's _augmentation_space; `wide`: TrivialAugmentWide's),
  as float32 values of the exact linspace; None for ops without a magnitude. torch's float32
  linspace (vectorised, so CPU-dependent) can land a last bit below a whole number, which
  int() then truncates for a translation: here the exact value (benchmarks/NOTES.md)."""
  top = {'ShearX': 0.3, 'ShearY': 0.3, 'TranslateX': 150.0 / 331.0 * width,
         'TranslateY': 150.0 / 331.0 * height, 'Rotate': 30.0}.get(name, 0.9)
  if wide:
    top = {'TranslateX': 32.0, 'TranslateY': 32.0, 'Rotate': 135.0}.get(name, 0.99)
  if name in SIGNED:
    return np.linspace(0.0, top, num_bins).astype(np.float32)
  if name == 'Posterize':
    levels = np.arange(num_bins, dtype=np.float32) / np.float32((num_bins - 1) / (6 if wide else 4))
    return (8 - np.round(levels).astype(np.int32)).astype(np.float32)
  if name == 'Solarize':
    return np.linspace(255.0, 0.0, num_bins).astype(np.float32)
  return None


def row(name: str | None, magnitude: float, height: int, width: int) -> np.ndarray:
  """One op at one signed magnitude (as torchvision's _apply_op receives it) as a table row."""
  out = np.zeros(ROW, np.float32)
  out[0], out[1] = (-1 if name is None else OPS.index(name)), magnitude
  if name is None or name == 'Identity':
    kind = 'identity'
  else:
    kind = 'affine' if name in GEOMETRIC else name
  out[2] = _KINDS.index(kind)
  out[3:9] = image_ops.grid_theta(
      image_ops.geometric_matrix(name if kind == 'affine' else '', magnitude, height, width),
      height, width).reshape(-1)
  ratio = 1.0 + magnitude
  out[9], out[10] = np.float32(ratio), np.float32(1.0 - ratio)
  out[11] = int(magnitude) if name == 'Posterize' else 8
  out[12] = magnitude if name == 'Solarize' else 256.0
  return out


def _rows(name: str, bins: np.ndarray | None, height: int, width: int) -> list[np.ndarray]:
  """Rows for each bin of `bins` and both signs: shape (len(bins) or 1, 2)."""
  values = [0.0] if bins is None else [float(b) for b in bins]
  sign = -1.0 if name in SIGNED else 1.0
  return [[row(name, v, height, width), row(name, sign * v if v else v, height, width)]
          for v in values]


@functools.cache
def tables(policy: str, height: int, width: int, randaugment_m: int = 9) -> dict[str, np.ndarray]:
  """The policy's rows: 'rows' (..., 2 signs, ROW) and, for AutoAugment, 'probs' (25, 2)."""
  if policy == 'autoaugment_cifar10':
    rows, probs = [], []
    for sub in AUTOAUGMENT_CIFAR10:
      rows.append([])
      probs.append([p for _, p, _ in sub])
      for name, _, level in sub:
        bins = magnitudes(name, 10, height, width, wide=False)
        # torchvision's sign 0 negates: index 0 the negative row, 1 the positive
        pos, neg = _rows(name, None if bins is None else bins[level:level + 1], height, width)[0]
        rows[-1].append([neg, pos])
    return {'rows': np.array(rows), 'probs': np.array(probs, np.float32),
            'skip': row(None, 0.0, height, width)}
  wide = policy == 'trivialaugment'
  rows = []
  for name in OPS[:-1]:  # RandAugment and TrivialAugmentWide have no Invert
    bins = magnitudes(name, NUM_BINS, height, width, wide=wide)
    if bins is not None and not wide:
      bins = bins[randaugment_m:randaugment_m + 1]
    per_bin = _rows(name, bins, height, width)
    rows.append(per_bin * (NUM_BINS if wide and bins is None else 1))
  return {'rows': np.array(rows)}  # (14, bins, 2, ROW)


def sample(policy: str, keys: jax.Array, height: int, width: int, randaugment_n: int = 2,
           randaugment_m: int = 9) -> jax.Array:
  """(b, stages, ROW): the rows each image's key draws, in the order they apply."""
  t = tables(policy, height, width, randaugment_m)

  def draw(key):
    if policy == 'autoaugment_cifar10':
      k_sub, k_prob, k_sign = jax.random.split(key, 3)
      sub = jax.random.randint(k_sub, (), 0, len(AUTOAUGMENT_CIFAR10))
      applied = jax.random.uniform(k_prob, (2,)) <= jnp.asarray(t['probs'])[sub]
      signs = jax.random.randint(k_sign, (2,), 0, 2)
      chosen = jnp.asarray(t['rows'])[sub, jnp.arange(2), signs]
      return jnp.where(applied[:, None], chosen, jnp.asarray(t['skip']))
    stages = 1 if policy == 'trivialaugment' else randaugment_n
    k_op, k_bin, k_sign = jax.random.split(key, 3)
    ops = jax.random.randint(k_op, (stages,), 0, len(OPS) - 1)
    bins = jax.random.randint(k_bin, (stages,), 0, t['rows'].shape[1])
    signs = jax.random.randint(k_sign, (stages,), 0, 2)
    return jnp.asarray(t['rows'])[ops, bins, signs]
  return jax.vmap(draw)(keys)


def apply_row(image: jax.Array, r: jax.Array) -> jax.Array:
  """One image (H, W, C) of uint8 values through the op of row `r`: every kind is computed and
  the row's kind kept (what a per-image switch does under vmap anyway)."""
  kind = r[2].astype(jnp.int32)
  shifted = image_ops.affine(image, r[3:9].reshape(3, 2))
  degenerate = {'Brightness': jnp.zeros_like(image), 'Color': image_ops.grayscale(image),
                'Contrast': image_ops.contrast_mean(image), 'Sharpness': image_ops.blurred(image)}
  which = jnp.stack([jnp.broadcast_to(degenerate[n], image.shape) for n in BLENDS])
  blended = image_ops.blend(image, which[jnp.clip(kind - 2, 0, 3)], r[9], r[10])
  if image.shape[-1] == 1:  # adjust_saturation leaves one-channel images alone
    blended = jnp.where(kind == _KINDS.index('Color'), image, blended)
  results = [image, shifted, blended, blended, blended, blended,
             image_ops.posterize(image, r[11]), image_ops.solarize(image, r[12]),
             image_ops.autocontrast(image), image_ops.equalize(image), image_ops.invert(image)]
  return jnp.select([kind == i for i in range(len(results))], results, image)


def apply(policy: str, images: jax.Array, keys: jax.Array, randaugment_n: int = 2,
          randaugment_m: int = 9) -> jax.Array:
  """The policy on a batch (b, H, W, C) of 0..255 pixels, rounded to uint8 values first (the
  policies work on uint8 images), one key per image."""
  if policy == 'none':
    return images
  _, height, width, _ = images.shape
  rows = sample(policy, keys, height, width, randaugment_n, randaugment_m)
  images = jnp.round(jnp.clip(images, 0.0, 255.0))
  # One loop body for every stage: the ops compile once, not once per stage.
  return jax.lax.fori_loop(0, rows.shape[1],
                           lambda stage, x: jax.vmap(apply_row)(x, rows[:, stage]), images)
