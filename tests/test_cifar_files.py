"""CIFAR-10/100 from the python-version pickles, written here byte for byte as Python 2 wrote them."""

import os
import pickle
import re
import struct
from typing import ClassVar

import numpy as np
import pytest

from resnet_flax import data as data_lib
from resnet_flax.data import cifar_files, sources
from resnet_flax.errors import UserError

PER_BATCH = 20  # images per file; the real files hold 10,000 (train) / 50,000 (CIFAR-100 train)
_RECONSTRUCT = np.zeros(1).__reduce_ex__(2)[0]


class Python2Pickler(pickle._Pickler):  # pylint: disable=protected-access
  """What cPickle wrote for the CIFAR files: protocol 2, str as BINSTRING, numpy.core globals.

  Read back with encoding='bytes', keys and dtype codes come back as bytes, as from the real files.
  """
  dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)  # pylint: disable=protected-access

  def save_bytes(self, obj):
    n = len(obj)
    head = pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack('<i', n)
    self.write(head + obj)
    self.memoize(obj)

  def save_str(self, obj):
    self.save_bytes(obj.encode('latin-1'))

  def save_global(self, obj, name=None):
    if obj is _RECONSTRUCT:
      self.write(pickle.GLOBAL + b'numpy.core.multiarray\n_reconstruct\n')
      self.memoize(obj)
    else:
      super().save_global(obj, name)

  dispatch[bytes] = save_bytes
  dispatch[str] = save_str


def dump(path, obj):
  with open(path, 'wb') as f:
    Python2Pickler(f, protocol=2).dump(obj)


def batch(rng, n, labels):
  """One file's dict: b'data' rows are the R, G, B planes of a 32x32 image; labels as lists."""
  return {b'batch_label': b'training batch', b'filenames': [b'img_%d.png' % i for i in range(n)],
          b'data': rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
          **{key: list(map(int, values)) for key, values in labels.items()}}


def write_cifar10(root, seed=0):
  folder = os.path.join(root, 'cifar-10-batches-py')
  os.makedirs(folder)
  rng = np.random.default_rng(seed)
  written = {}
  for name in [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']:
    written[name] = batch(rng, PER_BATCH, {b'labels': rng.integers(0, 10, PER_BATCH)})
    dump(os.path.join(folder, name), written[name])
  dump(os.path.join(folder, 'batches.meta'),
       {b'num_cases_per_batch': PER_BATCH, b'num_vis': 3072,
        b'label_names': [b'airplane', b'automobile', b'bird', b'cat', b'deer', b'dog', b'frog',
                         b'horse', b'ship', b'truck']})
  return folder, written


def write_cifar100(root, seed=0):
  folder = os.path.join(root, 'cifar-100-python')
  os.makedirs(folder)
  rng = np.random.default_rng(seed)
  written = {}
  for name, n in (('train', 3 * PER_BATCH), ('test', PER_BATCH)):
    fine = rng.integers(0, 100, n)
    written[name] = batch(rng, n, {b'fine_labels': fine, b'coarse_labels': fine // 5})
    dump(os.path.join(folder, name), written[name])
  dump(os.path.join(folder, 'meta'), {b'fine_label_names': [b'f%d' % i for i in range(100)],
                                      b'coarse_label_names': [b'c%d' % i for i in range(20)]})
  return folder, written


def load(make_config, name, directory, **overrides):
  return data_lib.load_dataset(make_config(**{'data.dataset': name, 'data.cifar_dir': directory,
                                              **overrides}))


def test_written_files_are_python2_pickles(tmp_path):
  folder, _ = write_cifar10(tmp_path)
  with open(os.path.join(folder, 'data_batch_1'), 'rb') as f:
    raw = f.read()
  assert raw.startswith(b'\x80\x02') and b'numpy.core.multiarray' in raw
  assert b'_codecs' not in raw and b'numpy._core' not in raw


def test_cifar10_files_load_in_nhwc_with_names_and_constants(tmp_path, make_config):
  folder, written = write_cifar10(tmp_path)
  for directory in (str(tmp_path), folder):  # the parent or the extracted folder itself
    ds = load(make_config, 'cifar10_files', directory)
    assert (len(ds.train), len(ds.test), ds.num_classes) == (5 * PER_BATCH, PER_BATCH, 10)
    assert ds.image_shape == (32, 32, 3) and ds.train.images.dtype == np.uint8
    assert ds.label_names[:2] == ('airplane', 'automobile')
    assert ds.mean == sources.NORMALIZATION['cifar10'][0]
  # row = R plane, G plane, B plane, each 32x32 row-major; batches in order 1..5
  row = written['data_batch_2'][b'data'][3]
  np.testing.assert_array_equal(ds.train.images[PER_BATCH + 3, 5, 7],
                                [row[5 * 32 + 7], row[1024 + 5 * 32 + 7], row[2048 + 5 * 32 + 7]])
  np.testing.assert_array_equal(ds.test.labels, written['test_batch'][b'labels'])


@pytest.mark.parametrize('labels,classes', [('fine', 100), ('coarse', 20)])
def test_cifar100_files_fine_or_coarse(tmp_path, make_config, labels, classes):
  _, written = write_cifar100(tmp_path)
  ds = load(make_config, 'cifar100_files', str(tmp_path), **{'data.cifar100_labels': labels})
  assert ds.num_classes == classes and len(ds.label_names) == classes
  assert ds.label_names[1] == ('f1' if labels == 'fine' else 'c1')
  key = b'fine_labels' if labels == 'fine' else b'coarse_labels'
  np.testing.assert_array_equal(ds.train.labels, written['train'][key])
  assert ds.mean == sources.NORMALIZATION['cifar100'][0]


def test_coarse_labels_of_cifar10_are_refused(tmp_path, make_config):
  write_cifar10(tmp_path)
  with pytest.raises(UserError, match="CIFAR-10 has 'fine' labels only"):
    load(make_config, 'cifar10_files', str(tmp_path), **{'data.cifar100_labels': 'coarse'})


def test_unset_or_missing_folder_says_where_to_get_the_files(tmp_path, make_config):
  with pytest.raises(UserError, match='cifar_dir is not set.*cifar-10-python.tar.gz'):
    load(make_config, 'cifar10_files', '')
  with pytest.raises(UserError, match='no such folder.*kriz/cifar.html'):
    load(make_config, 'cifar10_files', str(tmp_path / 'nowhere'))


def test_missing_files_are_named(tmp_path, make_config):
  folder, _ = write_cifar10(tmp_path)
  os.remove(os.path.join(folder, 'data_batch_3'))
  os.remove(os.path.join(folder, 'batches.meta'))
  with pytest.raises(UserError, match=r'lacks data_batch_3, batches.meta of the CIFAR-10'):
    load(make_config, 'cifar10_files', str(tmp_path))


@pytest.mark.parametrize('damage,reason', [
    (lambda raw: raw[:len(raw) // 2], 'truncated'),
    (lambda raw: b'not a pickle at all', 'UnpicklingError'),
    (lambda raw: pickle.dumps([1, 2, 3], protocol=2), 'holds a list, not a dict'),
    (lambda raw: pickle.dumps({b'data': np.zeros((4, 100), np.uint8), b'labels': [0] * 4}),
     r'images are uint8 \(4, 100\)'),
    (lambda raw: pickle.dumps({b'data': np.zeros((4, 3072), np.uint8), b'labels': [0] * 3}),
     'holds 4 images but labels of shape'),
    (lambda raw: pickle.dumps({b'data': np.zeros((2, 3072), np.uint8), b'labels': [0, 10]}),
     'labels span 0..10'),
    (lambda raw: pickle.dumps({b'labels': [0]}), "lacks the b'data' array"),
])
def test_corrupt_files_are_named_with_the_fix(tmp_path, make_config, damage, reason):
  folder, _ = write_cifar10(tmp_path)
  path = os.path.join(folder, 'data_batch_4')
  with open(path, 'rb') as f:
    raw = f.read()
  with open(path, 'wb') as f:
    f.write(damage(raw))
  with pytest.raises(UserError) as err:
    load(make_config, 'cifar10_files', str(tmp_path))
  message = str(err.value)
  assert path in message and 'cifar-10-python.tar.gz' in message and 'again' in message
  if reason != 'truncated':
    assert re.search(reason, message), message


def test_a_pickle_that_would_run_code_is_refused(tmp_path, make_config):
  folder, _ = write_cifar10(tmp_path)
  marker = tmp_path / 'ran'

  class Exploit:
    def __reduce__(self):
      return (os.mkdir, (str(marker),))

  with open(os.path.join(folder, 'test_batch'), 'wb') as f:
    pickle.dump({b'data': Exploit()}, f, protocol=2)
  with pytest.raises(UserError, match=r'imports \w+\.mkdir, which no CIFAR file does'):
    load(make_config, 'cifar10_files', str(tmp_path))
  assert not marker.exists()


def test_pickles_resaved_by_python3_numpy2_also_load(tmp_path):
  folder, written = write_cifar10(tmp_path)
  for protocol in (2, 5):  # _codecs.encode + numpy._core; pickle-5 numpy._core.numeric._frombuffer
    with open(os.path.join(folder, 'test_batch'), 'wb') as f:
      pickle.dump(written['test_batch'], f, protocol=protocol)
    loaded = cifar_files.load('cifar10_files', folder)
    np.testing.assert_array_equal(loaded.test.labels, written['test_batch'][b'labels'])
