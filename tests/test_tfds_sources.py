"""tfds datasets through the real builders under tfds.testing.mock_data: shapes, labels, splits, errors."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from resnet_flax import data as data_lib
from resnet_flax.data import sources
from resnet_flax.errors import UserError
from tests.test_data import write_prepared_metadata

N = 12  # mock examples per split


def load_mocked(tmp_path, make_config, name, splits=('train', 'test'), **overrides):
  write_prepared_metadata(tmp_path, name, N, splits)
  config = make_config(**{'data.dataset': name, 'data.data_dir': str(tmp_path),
                          'data.download': False, **overrides})
  with tfds.testing.mock_data(num_examples=N, policy=tfds.testing.MockPolicy.USE_FILES,
                              data_dir=str(tmp_path)):
    return data_lib.load_dataset(config)


@pytest.mark.parametrize('name,shape,classes,first_label', [
    ('cifar100', (32, 32, 3), 100, '0'),  # names come from the files at download time
    ('mnist', (28, 28, 1), 10, '0'),
    ('fashion_mnist', (28, 28, 1), 10, 'T-shirt/top'),
    ('svhn_cropped', (32, 32, 3), 10, '0'),
    ('kmnist', (28, 28, 1), 10, 'o'),  # any image classification dataset, by name
])
def test_tfds_datasets_load_with_their_info(tmp_path, make_config, name, shape, classes,
                                            first_label):
  ds = load_mocked(tmp_path, make_config, name)
  assert ds.image_shape == shape and ds.num_classes == classes
  assert ds.label_names[0] == first_label and len(ds.label_names) == classes
  assert (len(ds.train), len(ds.test)) == (N, N)
  assert ds.train.images.dtype == np.uint8 and ds.train.labels.dtype == np.int32
  assert ds.train.labels.max() < classes
  if name in sources.NORMALIZATION:
    assert (ds.mean, ds.std) == sources.NORMALIZATION[name]
  else:  # computed from the training images
    pixels = ds.train.images.reshape(-1, shape[-1]) / 255.0
    np.testing.assert_allclose(ds.mean, pixels.mean(0))


def test_cifar100_coarse_labels(tmp_path, make_config):
  ds = load_mocked(tmp_path, make_config, 'cifar100', **{'data.cifar100_labels': 'coarse'})
  assert ds.num_classes == 20 and len(ds.label_names) == 20
  assert ds.train.labels.max() < 20
  assert ds.mean == sources.NORMALIZATION['cifar100'][0]  # the same images


def test_configured_splits_and_a_validation_carve_out(tmp_path, make_config):
  ds = load_mocked(tmp_path, make_config, 'svhn_cropped', ('train', 'test', 'extra'),
                   **{'data.train_split': 'train+extra[:50%]', 'data.validation_size': 3})
  assert len(ds.validation) == 3 and len(ds.train) + 3 == N  # mock_data: N per read


def test_a_split_that_does_not_exist_lists_the_splits(tmp_path, make_config):
  with pytest.raises(UserError, match=r"no split 'validation' \(--config.data.test_split="
                                      r"'validation'\)\. Its splits are: test, train\."):
    load_mocked(tmp_path, make_config, 'mnist', **{'data.test_split': 'validation'})


@pytest.mark.parametrize('name,overrides,message', [
    ('imdb_reviews', {}, r"features text \(Text\), label \(ClassLabel\).*an 'image' image feature"),
    ('tf_flowers', {}, r'shape \(None, None, 3\).*one fixed size'),
    ('mnist', {'data.cifar100_labels': 'coarse'}, "no 'coarse_label' feature.*cifar100 only"),
])
def test_datasets_that_are_not_fixed_size_image_classification_are_refused(
    tmp_path, make_config, name, overrides, message):
  config = make_config(**{'data.dataset': name, 'data.data_dir': str(tmp_path),
                          'data.download': False, **overrides})
  with pytest.raises(UserError, match=message):  # from the builder's code, before any download
    data_lib.load_dataset(config)
