"""The image ops of AutoAugment, RandAugment and TrivialAugment, as torchvision computes them.

Each op takes one image (H, W, C) float32 holding uint8 values 0..255 and returns one the same,
reproducing torchvision.transforms.functional on uint8 tensors step by step (float32 blends
truncated back to uint8, nearest-neighbour affine sampling with zero fill, torchvision's own
equalize LUT), so that tests/test_image_ops.py can compare them pixel for pixel. The host-side
helpers turn an op's magnitude into the float32 parameters torchvision would compute from it.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale (TF's weights)


def _to_uint8(x: jax.Array) -> jax.Array:
  """`.clamp(0, 255).to(torch.uint8)`: clamps, then truncates toward zero."""
  return jnp.floor(jnp.clip(x, 0.0, 255.0))


def inverse_affine(angle: float, translate: tuple[float, float], shear: tuple[float, float],
                   center: tuple[float, float]) -> list[float]:
  """torchvision's _get_inverse_affine_matrix (scale 1): output -> input coordinates, relative
  to the image centre, in float64 as torchvision computes it."""
  rot, sx, sy = math.radians(angle), math.radians(shear[0]), math.radians(shear[1])
  (cx, cy), (tx, ty) = center, translate
  a = math.cos(rot - sy) / math.cos(sy)
  b = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
  c = math.sin(rot - sy) / math.cos(sy)
  d = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
  m = [d, -b, 0.0, -c, a, 0.0]
  m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty)
  m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty)
  m[2] += cx
  m[5] += cy
  return m


def grid_theta(matrix: list[float], height: int, width: int) -> np.ndarray:
  """The float32 (3, 2) matrix torchvision's _gen_affine_grid multiplies the pixel centres by:
  theta transposed, divided by half the image size (grid_sample's -1..1 units)."""
  theta = np.asarray(matrix, np.float64).astype(np.float32).reshape(2, 3).T
  return theta / np.array([0.5 * width, 0.5 * height], np.float32)


def geometric_matrix(name: str, magnitude: float, height: int, width: int) -> list[float]:
  """The inverse affine matrix torchvision's _apply_op uses for a geometric op (tensor path:
  shears about the top-left corner, translations by int(magnitude) pixels, rotations about
  the centre)."""
  corner = (-0.5 * width, -0.5 * height)  # center=[0, 0] in pixels, relative to the centre
  shear = math.degrees(math.atan(magnitude))
  if name == 'ShearX':
    return inverse_affine(0.0, (0.0, 0.0), (shear, 0.0), corner)
  if name == 'ShearY':
    return inverse_affine(0.0, (0.0, 0.0), (0.0, shear), corner)
  if name == 'TranslateX':
    return inverse_affine(0.0, (float(int(magnitude)), 0.0), (0.0, 0.0), (0.0, 0.0))
  if name == 'TranslateY':
    return inverse_affine(0.0, (0.0, float(int(magnitude))), (0.0, 0.0), (0.0, 0.0))
  if name == 'Rotate':  # F.rotate passes -angle to the same helper
    return inverse_affine(-magnitude, (0.0, 0.0), (0.0, 0.0), (0.0, 0.0))
  return inverse_affine(0.0, (0.0, 0.0), (0.0, 0.0), (0.0, 0.0))


def affine(image: jax.Array, theta: jax.Array) -> jax.Array:
  """Nearest-neighbour resampling at grid_sample's source positions (align_corners=False,
  ties to even, zero outside): F.affine / F.rotate with fill=None on a uint8 tensor."""
  height, width, _ = image.shape
  xs = jnp.arange(width, dtype=jnp.float32) - (0.5 * width - 0.5)  # pixel centres
  ys = jnp.arange(height, dtype=jnp.float32)[:, None] - (0.5 * height - 0.5)
  gx = xs * theta[0, 0] + ys * theta[1, 0] + theta[2, 0]
  gy = xs * theta[0, 1] + ys * theta[1, 1] + theta[2, 1]
  ix = jnp.round(((gx + 1.0) * width - 1.0) / 2.0).astype(jnp.int32)  # round: ties to even
  iy = jnp.round(((gy + 1.0) * height - 1.0) / 2.0).astype(jnp.int32)
  inside = (ix >= 0) & (ix < width) & (iy >= 0) & (iy < height)
  picked = image[jnp.clip(iy, 0, height - 1), jnp.clip(ix, 0, width - 1)]
  return jnp.where(inside[..., None], picked, 0.0)


def blend(image: jax.Array, degenerate: jax.Array, ratio: jax.Array,
          one_minus: jax.Array) -> jax.Array:
  """torchvision's _blend: ratio * image + (1 - ratio) * degenerate in float32, truncated.

  Both products are rounded to float32 before the sum, as torch computes them (`_stored`)."""
  opaque_zero = (ratio != ratio).astype(jnp.int32)  # 0 unless NaN; XLA cannot fold it
  return _to_uint8(_stored(ratio * image, opaque_zero) + _stored(one_minus * degenerate,
                                                                 opaque_zero))


def _stored(x: jax.Array, opaque_zero: jax.Array) -> jax.Array:
  """`x` rounded to float32. XLA's CPU compiler contracts a product and a sum into one fused
  multiply-add (one rounding, not two), which moves a truncated value now and then; OR-ing
  the bits with a zero it cannot see through keeps the product a separate operation."""
  bits = jax.lax.bitcast_convert_type(x, jnp.int32) | opaque_zero
  return jax.lax.bitcast_convert_type(bits, jnp.float32)


def grayscale(image: jax.Array) -> jax.Array:
  """rgb_to_grayscale on uint8: the weighted sum truncated to uint8, one channel kept."""
  if image.shape[-1] == 1:
    return image
  w = [np.float32(v) for v in GRAY_WEIGHTS]
  opaque_zero = (image[..., 0] != image[..., 0]).astype(jnp.int32)
  r, g, b = (_stored(w[c] * image[..., c], opaque_zero) for c in range(3))
  return jnp.floor(r + g + b)[..., None]


def contrast_mean(image: jax.Array) -> jax.Array:
  """adjust_contrast's degenerate image: the mean of the (uint8) grayscale image."""
  return jnp.mean(grayscale(image))


def blurred(image: jax.Array) -> jax.Array:
  """adjust_sharpness's degenerate image: the 3x3 smoothing kernel (centre 5, others 1, / 13)
  on the interior, rounded; the border pixels unchanged."""
  height, width, _ = image.shape
  one, five = np.float32(1.0) / np.float32(13.0), np.float32(5.0) / np.float32(13.0)
  total = jnp.zeros((height - 2, width - 2, image.shape[-1]), jnp.float32)
  for dy in range(3):
    for dx in range(3):
      weight = five if (dy, dx) == (1, 1) else one
      total = total + weight * image[dy:dy + height - 2, dx:dx + width - 2]
  return image.at[1:-1, 1:-1].set(jnp.round(total))


def posterize(image: jax.Array, bits: jax.Array) -> jax.Array:
  """Keeps the top `bits` bits of each value."""
  mask = (256 - jnp.left_shift(1, 8 - bits.astype(jnp.int32))) & 0xFF
  return (image.astype(jnp.int32) & mask).astype(jnp.float32)


def solarize(image: jax.Array, threshold: jax.Array) -> jax.Array:
  """Inverts the values at or above `threshold`."""
  return jnp.where(image >= threshold, 255.0 - image, image)


def invert(image: jax.Array) -> jax.Array:
  return 255.0 - image


def autocontrast(image: jax.Array) -> jax.Array:
  """Stretches each channel to 0..255 (float32 scale, truncated); flat channels unchanged."""
  low, high = image.min((0, 1)), image.max((0, 1))
  flat = high == low
  scale = jnp.where(flat, 1.0, 255.0 / jnp.where(flat, 1.0, high - low))
  return _to_uint8((image - jnp.where(flat, 0.0, low)) * scale)


def equalize(image: jax.Array) -> jax.Array:
  """torchvision's equalize per channel: value v -> (#pixels below v + step // 2) // step with
  step = #pixels below the channel's maximum // 255, unchanged where step is 0."""
  def channel(values):
    flat = values.reshape(-1).astype(jnp.int32)
    hist = jnp.zeros(256, jnp.int32).at[flat].add(1)
    below = jnp.cumsum(hist) - hist  # pixels below each value
    step = below[jnp.max(flat)] // 255
    lut = jnp.clip((below + step // 2) // jnp.maximum(step, 1), 0, 255)
    return jnp.where(step == 0, flat, lut[flat]).reshape(values.shape).astype(jnp.float32)
  return jax.vmap(channel, in_axes=-1, out_axes=-1)(image)
