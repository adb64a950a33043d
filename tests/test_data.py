"""Data: sources and the real tfds path under mock_data."""

import socket
import time

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from resnet_flax import data as data_lib
from resnet_flax.data import sources, tfds_source
from resnet_flax.errors import UserError


def write_prepared_metadata(data_dir, name, num_examples, splits=('train', 'test')):
  """Writes the metadata of a prepared tfds dataset (no records): mock_data supplies the records."""
  builder = tfds.builder(name, data_dir=str(data_dir))
  builder.data_path.mkdir(parents=True)
  builder.info.set_splits(tfds.core.SplitDict([
      tfds.core.SplitInfo(name=split, shard_lengths=[num_examples], num_bytes=0)
      for split in splits]))
  builder.info.write_to_directory(builder.data_path)


@pytest.fixture
def digits(make_config):
  return data_lib.load_dataset(make_config(**{'data.dataset': 'digits'}))


def test_digits_fixed_split(digits):
  assert digits.image_shape == (32, 32, 1)
  assert (len(digits.train), len(digits.test)) == (1437, 360)
  assert digits.train.images.dtype == np.uint8 and digits.train.images.max() == 255
  assert set(np.unique(digits.test.labels)) == set(range(10))
  again = data_lib.load_dataset(ml_collections.ConfigDict({'data': {'dataset': 'digits'}}))
  np.testing.assert_array_equal(again.test.images, digits.test.images)


def test_tfds_cifar10_loads_through_the_real_builder(tmp_path, make_config):
  write_prepared_metadata(tmp_path, 'cifar10', 24)
  config = make_config(**{'data.dataset': 'cifar10', 'data.data_dir': str(tmp_path)})
  with tfds.testing.mock_data(num_examples=24, policy=tfds.testing.MockPolicy.USE_FILES,
                              data_dir=str(tmp_path)):
    ds = data_lib.load_dataset(config)
  assert ds.num_classes == 10 and ds.image_shape == (32, 32, 3)
  assert len(ds.train) == 24 and ds.train.images.dtype == np.uint8
  assert ds.mean == sources.NORMALIZATION['cifar10'][0]


def test_missing_tfds_data_fails_fast_with_guidance(tmp_path, make_config):
  config = make_config(**{'data.dataset': 'cifar10', 'data.data_dir': str(tmp_path),
                          'data.download': False})
  start = time.monotonic()
  with pytest.raises(UserError) as err:
    data_lib.load_dataset(config)
  assert time.monotonic() - start < 30
  message = str(err.value)
  assert str(tmp_path) in message and 'configs/digits.py' in message
  assert 'download_and_prepare' in message


def test_unknown_tfds_name_suggests_close_names(make_config):
  with pytest.raises(UserError, match="Did you mean 'cifar10'"):
    data_lib.load_dataset(make_config(**{'data.dataset': 'cifar_10'}))


def test_probe_reports_an_unreachable_host():
  with socket.socket() as s:  # a loopback port that nobody listens on
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  assert tfds_source.probe_host('127.0.0.1', port, timeout=2)
  with socket.socket() as server:
    server.bind(('127.0.0.1', 0))
    server.listen()
    assert tfds_source.probe_host('127.0.0.1', server.getsockname()[1], timeout=2) is None


def test_synthetic_labels_are_learnable(make_config):
  ds = data_lib.load_dataset(make_config())
  # nearest class mean on the training set classifies the test set well above chance
  x = ds.train.images.reshape(len(ds.train), -1).astype(np.float32)
  means = np.stack([x[ds.train.labels == c].mean(0) for c in range(10)])
  t = ds.test.images.reshape(len(ds.test), -1).astype(np.float32)
  pred = np.argmin(((t[:, None] - means[None]) ** 2).sum(-1), axis=1)
  assert np.mean(pred == ds.test.labels) > 0.9


def test_normalisation_constants_can_be_set_and_are_checked(make_config):
  from resnet_flax.data import load_dataset
  from resnet_flax.errors import UserError
  imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
  ds = load_dataset(make_config(**{'data.mean': imagenet[0], 'data.std': imagenet[1]}))
  assert (ds.mean, ds.std) == imagenet
  with pytest.raises(UserError, match='one value per input channel'):
    load_dataset(make_config(**{'data.mean': (0.5,), 'data.std': (0.2,)}))
