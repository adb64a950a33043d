"""The validation split carved from train: sizes, disjointness, stratification, determinism."""

import numpy as np
import pytest

from resnet_flax import data as data_lib
from resnet_flax.data.dataset import Split
from resnet_flax.data.validation_split import carve_validation
from resnet_flax.errors import UserError


def numbered_split(labels):
  """Images whose first pixel is their index, so every image can be traced back."""
  n = len(labels)
  images = np.zeros((n, 2, 2, 1), np.uint16)
  images[:, 0, 0, 0] = np.arange(n)
  return Split(images, np.asarray(labels, np.int32))


def ids(split):
  return split.images[:, 0, 0, 0]


def test_sizes_disjointness_order_and_strata():
  labels = np.repeat(np.arange(10), [100, 100, 100, 100, 100, 50, 50, 50, 30, 20])
  full = numbered_split(np.random.default_rng(1).permutation(labels))
  train, val = carve_validation(full, 70)
  assert (len(train), len(val)) == (630, 70)
  assert set(ids(train)).isdisjoint(ids(val))
  assert sorted([*ids(train), *ids(val)]) == list(range(700))
  assert np.all(np.diff(ids(train)) > 0) and np.all(np.diff(ids(val)) > 0)  # original order kept
  np.testing.assert_array_equal(full.labels[ids(val)], val.labels)
  np.testing.assert_array_equal(np.bincount(val.labels), [10, 10, 10, 10, 10, 5, 5, 5, 3, 2])


def test_quotas_sum_exactly_by_largest_remainder():
  full = numbered_split(np.repeat(np.arange(3), [5, 5, 5]))
  _, val = carve_validation(full, 4)  # 4/3 each: the remainder goes to the lowest class
  np.testing.assert_array_equal(np.bincount(val.labels, minlength=3), [2, 1, 1])


def test_deterministic_and_independent_of_the_training_seed(make_config):
  full = numbered_split(np.arange(500) % 7)
  np.testing.assert_array_equal(ids(carve_validation(full, 50)[1]), ids(carve_validation(full, 50)[1]))
  a = data_lib.load_dataset(make_config(**{'data.validation_size': 24, 'seed': 0}))
  b = data_lib.load_dataset(make_config(**{'data.validation_size': 24, 'seed': 5}))
  assert (len(a.train), len(a.validation)) == (72, 24)
  np.testing.assert_array_equal(a.validation.images, b.validation.images)
  assert data_lib.load_dataset(make_config()).validation is None


def test_normalisation_comes_from_the_remaining_training_images(make_config):
  ds = data_lib.load_dataset(make_config(**{'data.validation_size': 24}))
  pixels = ds.train.images.reshape(-1, 3) / 255.0
  np.testing.assert_allclose(ds.mean, pixels.mean(0))


@pytest.mark.parametrize('size', [-1, 96, 1000])
def test_sizes_that_leave_no_training_images_are_refused(make_config, size):
  with pytest.raises(UserError, match=f'validation_size={size} must be 0 .* between 1 and 95'):
    data_lib.load_dataset(make_config(**{'data.validation_size': size}))
