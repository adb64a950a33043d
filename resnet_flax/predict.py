"""Top-5 labels for images, from a trained run's checkpoint alone (no dataset is loaded).

  python -m resnet_flax.predict --workdir runs/digits [--step N] [--json] FILES...

FILES are PNG/JPEG images of any size, converted to the model's channels, or .npy arrays of
pixels in [0, 255] of any height and width: a batch (N, H, W, C) or one image (H, W, C), with
the model's channels (or 1, repeated for an RGB model). Every input not at the model's input
size is resized to it as training resized the checkpoint's data (data/preprocess.resize:
bilinear, half-pixel centres, no antialiasing), images and .npy batches alike. Pixels are then
normalised with the run's saved mean and std.
"""

import argparse
import functools
import json
import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from resnet_flax.data import preprocess
from resnet_flax.training import evaluation
from resnet_flax.errors import UserError, exit_on_user_error
from resnet_flax.checkpoints.restore_run import restore_run
from resnet_flax.training.train_state import TrainState

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg')
BATCH_SIZE = 128  # images per forward pass; fewer inputs make one smaller batch


def predict(workdir: str, paths: list[str], step: int | None = None) -> dict[str, Any]:
  """{'step', 'predictions': [{'file', 'index', 'top': [{'label', 'name', 'probability'}]}]}.

  'index' is the position within a .npy batch (None for an image file); 'top' holds the
  min(5, classes) most probable labels, most probable first.
  """
  check_paths(paths)  # a mistyped name fails before the model is restored
  _, model, state, meta = restore_run(workdir, step)
  data = meta['data']
  images, sources = load_inputs(paths, tuple(data['image_shape']))
  probabilities, labels = _top_k(model, state, normalise(images, data['mean'], data['std']),
                                 min(5, data['num_classes']))
  predictions = [{'file': path, 'index': index,
                  'top': [{'label': int(label), 'name': data['label_names'][label],
                           'probability': float(p)} for label, p in zip(top, probs)]}
                 for (path, index), top, probs in zip(sources, labels, probabilities)]
  return {'step': meta['step'], 'predictions': predictions}


def load_inputs(paths: list[str], image_shape: tuple[int, int, int],
                ) -> tuple[np.ndarray, list[tuple[str, int | None]]]:
  """float32 (N, H, W, C) pixels in [0, 255] at `image_shape`, and (file, index in a .npy or
  None) per image."""
  check_paths(paths)
  images, sources = [], []
  for path in paths:
    if path.lower().endswith('.npy'):
      batch = _read_npy(path, image_shape)
      sources += [(path, i) for i in range(len(batch))]
    else:
      batch = _read_image(path, image_shape)[None]
      sources.append((path, None))
    images.append(fit(batch, image_shape))
  return np.concatenate(images), sources


def fit(batch: np.ndarray, image_shape: tuple[int, int, int]) -> np.ndarray:
  """`batch` (N, h, w, C or 1) at the model's (H, W, C): gray repeated for an RGB model, and
  resized the way training resizes its data."""
  height, width, channels = image_shape
  if batch.shape[-1] != channels:
    batch = np.repeat(batch, channels, axis=-1)  # 1 -> 3, checked by the readers
  if batch.shape[1:3] != (height, width):
    batch = np.asarray(jax.jit(preprocess.resize, static_argnums=1)(batch, (height, width)))
  return batch.astype(np.float32)


def check_paths(paths: list[str]) -> None:
  """Every path is an existing file of a kind `load_inputs` reads."""
  if not paths:
    raise UserError('No files given: pass PNG/JPEG images or .npy arrays to predict.')
  for path in paths:
    if not os.path.isfile(path):
      raise UserError(f'{path}: no such file.')
    if os.path.splitext(path)[1].lower() not in (*IMAGE_SUFFIXES, '.npy'):
      raise UserError(f'{path}: unknown kind of file. Pass PNG or JPEG images '
                      f'({", ".join(IMAGE_SUFFIXES)}) or .npy arrays of pixels.')


def normalise(images: np.ndarray, mean: list[Any], std: list[float]) -> np.ndarray:
  """Pixels in [0, 255] to the model's input, exactly as the training pipeline computes it; `mean`
  is per channel (C,) or a per-pixel mean image (H, W, C)."""
  mean255 = np.asarray(mean, np.float32) * np.float32(255)
  std255 = np.asarray(std, np.float32) * np.float32(255)
  return (images.astype(np.float32) - mean255) / std255


def _read_image(path: str, image_shape: tuple[int, int, int]) -> np.ndarray:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  channels = image_shape[2]
  if channels not in (1, 3):
    raise UserError(f'{path}: the model takes {channels}-channel images, which PNG/JPEG files '
                    'do not hold; pass them as a .npy array.')
  try:
    with Image.open(path) as image:
      image = image.convert('L' if channels == 1 else 'RGB')
      return np.asarray(image, np.float32).reshape(image.height, image.width, channels)
  except Exception as e:  # PIL raises several types for unreadable or broken files
    raise UserError(f'{path}: cannot be read as an image ({type(e).__name__}: {e}). Pass a '
                    'valid PNG or JPEG file.') from None


def _read_npy(path: str, image_shape: tuple[int, int, int]) -> np.ndarray:
  try:
    array = np.load(path, allow_pickle=False)
  except (OSError, ValueError) as e:
    raise UserError(f'{path}: cannot be read as a .npy array ({e}).') from None
  batch = array[None] if array.ndim == 3 else array
  channels = image_shape[2]
  if (batch.ndim != 4 or batch.shape[-1] not in {channels, 1} or not len(batch)
      or 0 in batch.shape):
    raise UserError(f'{path}: an array of shape {array.shape}, but the model takes images of '
                    f'{channels} channel(s) (its input is (H, W, C) = {image_shape}). Pass a '
                    f'batch (N, H, W, {channels}) or a single image (H, W, {channels}), of any '
                    'height and width (they are resized).')
  if not (np.issubdtype(batch.dtype, np.integer) or np.issubdtype(batch.dtype, np.floating)):
    raise UserError(f'{path}: an array of {batch.dtype}; pass uint8 or float pixels.')
  if batch.dtype != np.uint8 and not (np.isfinite(batch).all() and 0 <= batch.min()
                                      and batch.max() <= 255):
    raise UserError(f'{path}: values outside [0, 255]. Pass raw pixel values; the saved '
                    'normalisation is applied here.')
  return batch.astype(np.float32)


def _top_k(model: nn.Module, state: TrainState, images: np.ndarray,
           k: int) -> tuple[np.ndarray, np.ndarray]:
  """(probabilities, labels), each (N, k), in batches padded to one size (one compilation)."""
  variables = evaluation.eval_variables(state)  # the moving averages when EMA is on
  size = min(BATCH_SIZE, len(images))
  padded = np.concatenate([images, np.zeros((-len(images) % size, *images.shape[1:]),
                                            np.float32)])
  outputs = [_top_k_batch(variables, padded[i:i + size], model=model, k=k)
             for i in range(0, len(padded), size)]
  probabilities, labels = (np.concatenate(x)[:len(images)] for x in zip(*jax.device_get(outputs)))
  return probabilities, labels


@functools.partial(jax.jit, static_argnames=('model', 'k'))
def _top_k_batch(variables: dict[str, Any], images: jax.Array, model: nn.Module,
                 k: int) -> tuple[jax.Array, jax.Array]:
  logits = model.apply(variables, images, train=False)
  return jax.lax.top_k(jax.nn.softmax(logits.astype(jnp.float32)), k)


def format_predictions(result: dict[str, Any]) -> str:
  lines = []
  for p in result['predictions']:
    lines.append(p['file'] if p['index'] is None else f'{p["file"]}[{p["index"]}]')
    width = max(len(t['name']) for t in p['top'])
    lines += [f'  {rank}. {t["name"]:<{width}}  {t["probability"]:.4f}'
              for rank, t in enumerate(p['top'], 1)]
  return '\n'.join(lines)


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(prog='python -m resnet_flax.predict',
                                   description=__doc__.split('\n')[0])
  parser.add_argument('--workdir', required=True, help="the training run's --workdir")
  parser.add_argument('--step', type=int, help='checkpoint step (default: the newest)')
  parser.add_argument('--json', action='store_true', help='print JSON instead of text')
  parser.add_argument('files', nargs='+', metavar='FILE', help='PNG/JPEG images or .npy arrays')
  args = parser.parse_args(argv)
  logging.set_verbosity(logging.ERROR)  # orbax's notes on read-only checkpoint managers
  result = predict(args.workdir, args.files, args.step)
  print(json.dumps(result, indent=1) if args.json else format_predictions(result))


if __name__ == '__main__':
  exit_on_user_error(main)
