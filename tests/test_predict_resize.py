"""predict takes inputs of any size: PNG/JPEG images and .npy batches are resized alike, the way
training resizes the checkpoint's data."""

import numpy as np
import pytest
from PIL import Image

from resnet_flax import predict
from resnet_flax.data import preprocess
from resnet_flax.errors import UserError

RNG = np.random.default_rng(0)


def training_pixels(images: np.ndarray, size: int) -> np.ndarray:
  """What a run with data.image_size=`size` feeds its model (before normalising)."""
  prep = preprocess.Preprocess(np.zeros(3, np.float32), np.ones(3, np.float32), size, False)
  return np.asarray(prep.to_pixels(images))


@pytest.mark.parametrize('height, width', [(8, 8), (40, 24)])
def test_npy_batches_and_images_of_any_size_are_resized_as_training_does(tmp_path, height, width):
  batch = RNG.integers(0, 256, (3, height, width, 3), dtype=np.uint8)
  npy, png = str(tmp_path / 'b.npy'), str(tmp_path / 'one.png')
  np.save(npy, batch)
  Image.fromarray(batch[1]).save(png)
  images, sources = predict.load_inputs([npy, png], (16, 16, 3))
  assert images.shape == (4, 16, 16, 3) and sources[-1] == (png, None)
  expected = training_pixels(batch, 16)
  np.testing.assert_allclose(images[:3], expected, atol=1e-4)
  np.testing.assert_allclose(images[3], expected[1], atol=1e-4)  # the same image, same pixels


def test_gray_npy_for_an_rgb_model_is_repeated():
  gray = RNG.integers(0, 256, (2, 16, 16, 1)).astype(np.float32)
  np.testing.assert_array_equal(predict.fit(gray, (16, 16, 3)), np.repeat(gray, 3, axis=-1))


def test_wrong_channels_are_still_refused(tmp_path):
  path = str(tmp_path / 'a.npy')
  np.save(path, np.zeros((2, 9, 9, 2), np.uint8))
  with pytest.raises(UserError, match=r'3 channel\(s\).*of any height and width'):
    predict.load_inputs([path], (16, 16, 3))
