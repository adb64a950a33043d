"""The in-step batch builder: what each augmentation does to the pixels, that both data paths
(on the device, from the host) give the same batches, that unaugmented batches equal evaluation's
preprocessing, that the order is a pure function of (seed, step), and that shards make up the
global batch.

Every toy example's label is its index, so a batch says which examples it holds.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import SingleDeviceSharding

from resnet_flax import data as data_lib
from resnet_flax.data import augment, batches, host_batches, on_device
from resnet_flax.data.augment import Augment
from resnet_flax.data.preprocess import Preprocess
from resnet_flax.data.dataset import Dataset, Split

BATCH, N, SIZE = 16, 52, 12
STEPS = N // BATCH  # 3 steps, 48 of the 52 examples per epoch


def toy(n=N, size=SIZE, channels=3, **fields):
  """Random images; mean 0.5 makes no normalised pixel exactly 0, so zeros are cutout's."""
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8)
  labels = np.arange(n, dtype=np.int32)
  return Dataset('toy', Split(images, labels), Split(images[:5], labels[:5]), n,
                 (0.5,) * channels, (0.25,) * channels, tuple(map(str, range(n))), **fields)


@pytest.fixture(scope='module')
def ds():
  return toy()


@pytest.fixture(scope='module')
def data(ds):
  return place(ds)


class Placed:
  """A dataset on the device, with its preprocessing (hashable by identity, for the cache)."""

  def __init__(self, ds, image_size=0):
    self.ds, self.image_size = ds, image_size
    self.source = on_device.put_on_device(ds, SingleDeviceSharding(jax.devices()[0]))
    self.prep = Preprocess.from_dataset(ds, image_size)


def place(ds, image_size=0):
  return Placed(ds, image_size)


@functools.cache
def compiled(opts, prep_meta, count=1):
  def build(source, prep, seed, step, index):
    return batches.train_batch(source, opts, prep, seed, step, batch_size=BATCH,
                               steps_per_epoch=STEPS, num_classes=N, shard=(index, count))
  return jax.jit(build)


PLAIN = Augment()


def batch(data, opts=PLAIN, step=0, seed=0, index=0, count=1, source=None):
  source = data.source if source is None else source
  out = compiled(opts, (data.prep.image_size, data.prep.tile_gray), count)(
      source, data.prep, jnp.int32(seed), jnp.int32(step), jnp.int32(index))
  return jax.tree.map(np.asarray, out)


def host_batch(data, step, seed=0):
  """Step `step`'s uint8 batch as the host path yields it (one process)."""
  epoch, in_epoch = divmod(step, STEPS)
  out = list(host_batches.train_batches(data.ds, batch_size=BATCH, seed=seed, epoch=epoch,
                                        start_step=in_epoch))[0]
  return batches.HostBatch(jnp.asarray(out['image']), jnp.asarray(out['label']))


def unnormalize(images):
  return np.rint(images * 0.25 * 255 + 0.5 * 255).astype(np.int64)


@pytest.mark.parametrize('mode', ['zero', 'reflect'])
def test_crop_is_a_shift_of_the_padded_image(ds, data, mode):
  out = batch(data, Augment(crop_padding=3, crop_mode=mode))
  np.testing.assert_array_equal(out['label'], batch(data)['label'])  # augmenting keeps the order
  np_mode = 'reflect' if mode == 'reflect' else 'constant'
  offsets = set()
  for image, idx in zip(unnormalize(out['image']), out['label']):
    padded = np.pad(ds.train.images[idx].astype(np.int64), ((3, 3), (3, 3), (0, 0)), np_mode)
    found = [(dy, dx) for dy in range(7) for dx in range(7)
             if np.array_equal(image, padded[dy:dy + SIZE, dx:dx + SIZE])]
    assert found, f'an image is not a crop of its {mode}-padded original'
    offsets.update(found)
  assert len(offsets) > 5


def test_flip_mirrors_some_images(data):
  plain, out = batch(data)['image'], batch(data, Augment(flip=True))['image']
  flipped = [np.array_equal(o, p[:, ::-1]) for o, p in zip(out, plain)]
  kept = [np.array_equal(o, p) for o, p in zip(out, plain)]
  assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)


def zero_box(image):
  """(y0, y1, x0, x1) of the pixels that are 0 in every channel, checked to be a filled box."""
  zero = (image == 0).all(-1)
  ys, xs = np.nonzero(zero.any(1))[0], np.nonzero(zero.any(0))[0]
  box = (ys[0], ys[-1] + 1, xs[0], xs[-1] + 1)
  assert zero.sum() == (box[1] - box[0]) * (box[3] - box[2])
  return box


@pytest.mark.parametrize('per_batch', [False, True])
def test_cutout_fills_a_square_with_the_mean(data, per_batch):
  boxes = set()
  for step in range(STEPS):
    plain = batch(data, step=step)['image']
    out = batch(data, Augment(cutout=5, cutout_per_batch=per_batch), step=step)['image']
    batch_boxes = {zero_box(image) for image in out}
    for y0, y1, x0, x1 in batch_boxes:
      for lo, hi in ((y0, y1), (x0, x1)):
        assert hi - lo == 5 or ((lo == 0 or hi == SIZE) and hi - lo < 5)
    np.testing.assert_array_equal(np.where((out == 0).all(-1, keepdims=True), 0, plain), out)
    assert (len(batch_boxes) == 1) == per_batch
    boxes |= batch_boxes
  assert len(boxes) > 1


def host_eval(ds, labels, image_size=0):
  split = Split(ds.train.images[labels], ds.train.labels[labels])
  batch = next(data_lib.eval_batches(split, len(labels)))
  prep = Preprocess.from_dataset(ds, image_size)
  return {**batch, 'image': np.asarray(jax.jit(lambda x: prep(x))(batch['image']))}


@pytest.mark.parametrize('case', ['per_channel', 'per_pixel_mean', 'gray_upsized', 'downsized'])
def test_unaugmented_batch_equals_host_eval_preprocessing(case):
  image_size = {'gray_upsized': 20, 'downsized': 8}.get(case, 0)
  fields = {}
  if case in ('per_pixel_mean', 'downsized'):
    fields['pixel_mean'] = toy().train.images.mean(0, dtype=np.float64).astype(np.float32) / 255
  ds = toy(channels=1, size=10, grayscale_to_rgb=True) if case == 'gray_upsized' else toy(**fields)
  out = batch(place(ds, image_size))
  expected = host_eval(ds, out['label'], image_size)
  shape = (BATCH, *data_lib.input_shape(ds, image_size))
  assert out['image'].shape == expected['image'].shape == shape
  np.testing.assert_array_equal(out['image'], expected['image'])


def test_an_epoch_visits_distinct_examples_in_a_shuffled_order(data):
  epochs = [np.concatenate([batch(data, step=e * STEPS + s)['label'] for s in range(STEPS)])
            for e in range(3)]
  for order in epochs:
    assert len(order) == len(set(order)) == STEPS * BATCH and order.max() < N
  assert len({tuple(order) for order in epochs}) == 3
  big = batches.shuffle(jax.random.key(0), jnp.arange(50_000), 50_000)
  assert sorted(np.asarray(big).tolist()) == list(range(50_000))
  assert abs(np.corrcoef(np.arange(50_000), big)[0, 1]) < 0.02  # no trace of the input order


AUGMENTED = Augment(crop_padding=2, crop_mode='reflect', flip=True, cutout=3, cutout_per_batch=True)
MIXING = dataclasses.replace(AUGMENTED, mixup_alpha=0.4, cutmix_alpha=1.0)
POLICY = dataclasses.replace(AUGMENTED, policy='randaugment', randaugment_n=3, randaugment_m=15)


@pytest.mark.parametrize('opts', [AUGMENTED, MIXING, POLICY], ids=['augmented', 'mixing', 'policy'])
def test_same_key_and_step_same_batch_other_step_or_key_differs(data, opts):
  first = batch(data, opts, step=1)
  for key, value in batch(data, opts, step=1).items():
    np.testing.assert_array_equal(first[key], value)
  for other in (batch(data, opts, step=4), batch(data, opts, step=1, seed=1)):
    assert not np.array_equal(first['image'], other['image'])
    assert not np.array_equal(first['label'], other['label'])


@pytest.mark.parametrize('opts', [PLAIN, AUGMENTED, MIXING, POLICY],
                         ids=['plain', 'augmented', 'mixing', 'policy'])
def test_host_fed_batches_equal_the_on_device_ones(data, opts):
  for step in (0, 2, 4):  # across an epoch boundary
    on_device_batch = batch(data, opts, step=step, seed=5)
    host = batch(data, opts, step=step, seed=5, source=host_batch(data, step, seed=5))
    assert set(host) == set(on_device_batch)
    for key in host:
      np.testing.assert_array_equal(host[key], on_device_batch[key])


def test_host_batches_resume_mid_epoch_and_split_over_processes(ds):
  full = list(host_batches.train_batches(ds, batch_size=BATCH, seed=3, epoch=2))
  tail = list(host_batches.train_batches(ds, batch_size=BATCH, seed=3, epoch=2, start_step=1))
  assert len(full) == STEPS and len(tail) == STEPS - 1
  for a, b in zip(full[1:], tail):
    np.testing.assert_array_equal(a['image'], b['image'])
  halves = [list(host_batches.train_batches(ds, batch_size=BATCH, seed=3, epoch=2,
                                            process_index=i, process_count=2)) for i in (0, 1)]
  for whole, first, second in zip(full, *halves):
    np.testing.assert_array_equal(whole['label'], np.concatenate([first['label'],
                                                                  second['label']]))
  assert full[0]['image'].dtype == np.uint8


def test_a_registered_augmentation_applies_on_both_paths(data, monkeypatch):
  """A new augmentation is one registered function: both data paths run it."""
  monkeypatch.setattr(augment, 'OPS', list(augment.OPS))

  @augment.augmentation(stream=99)
  def invert(images, keys, batch_key, opts):
    del keys, batch_key, opts
    return 255.0 - images

  opts = Augment(mix_switch_prob=0.25)  # no other effect; a cache key of its own
  try:
    for source in (None, host_batch(data, 1)):
      out = batch(data, opts, step=1, source=source)
      expected = 255 - data.ds.train.images[out['label']].astype(np.int64)
      np.testing.assert_array_equal(unnormalize(out['image']), expected)
  finally:
    compiled.cache_clear()


@pytest.mark.parametrize('opts', [AUGMENTED, MIXING], ids=['augmented', 'mixing'])
def test_shards_make_up_the_global_batch(data, opts):
  whole = batch(data, opts, step=2)
  parts = [batch(data, opts, step=2, index=i, count=4) for i in range(4)]
  assert set(whole) == set(parts[0])
  for key in whole:
    np.testing.assert_array_equal(whole[key], np.concatenate([p[key] for p in parts]))


def test_mixing_blends_or_pastes_a_partner_from_the_augmented_batch(data):
  kinds = set()
  for step in range(40):
    plain, out = batch(data, AUGMENTED, step=step), batch(data, MIXING, step=step)
    own, target = out['label'], out['target']
    np.testing.assert_array_equal(own, plain['label'])
    np.testing.assert_allclose(target.sum(1), 1.0, atol=1e-6)
    own_weight = target[np.arange(BATCH), own]
    lam = own_weight.min()  # rows mixed with themselves keep weight 1
    assert np.all((np.abs(own_weight - lam) < 1e-6) | (own_weight == 1))
    if lam > 1 - 1e-6:
      continue
    other = target.copy()
    other[np.arange(BATCH), own] = 0
    partner_label = np.where(other.max(1) > 0, other.argmax(1), own)
    partner = np.array([np.flatnonzero(plain['label'] == p)[0] for p in partner_label])
    assert sorted(partner.tolist()) == list(range(BATCH))  # a permutation of the batch
    a, b = plain['image'], plain['image'][partner]
    if np.allclose(out['image'], lam * a + (1 - lam) * b, atol=1e-5):
      kinds.add('mixup')
      continue
    differs = (out['image'] != a).any((0, 3))  # cutmix: the partners' box, lam its kept share
    ys, xs = np.flatnonzero(differs.any(1)), np.flatnonzero(differs.any(0))
    box = np.zeros((SIZE, SIZE), bool)
    box[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1] = True
    np.testing.assert_array_equal(out['image'], np.where(box[None, :, :, None], b, a))
    assert lam == pytest.approx(1 - box.sum() / SIZE**2, abs=1e-6)
    kinds.add('cutmix')
    if len(kinds) == 2:
      break
  assert kinds == {'mixup', 'cutmix'}


@pytest.mark.slow  # two more compilations of the policy: about ten seconds
def test_a_policy_runs_after_crop_and_flip_and_before_cutout(data):
  """The policy changes the cropped, flipped images into other uint8 images; cutout's square
  (the mean colour) comes after it, where the policy-free batch has it."""
  out, without = batch(data, POLICY, step=1), batch(data, AUGMENTED, step=1)
  np.testing.assert_array_equal(out['label'], without['label'])
  no_cutout = batch(data, dataclasses.replace(POLICY, cutout=0), step=1)['image']
  box = (without['image'] == 0).all(-1, keepdims=True)
  np.testing.assert_array_equal(np.where(box, 0, no_cutout), out['image'])
  pixels = no_cutout * 0.25 * 255 + 0.5 * 255
  np.testing.assert_allclose(pixels, np.clip(np.rint(pixels), 0, 255), atol=1e-3)
  changed = [not np.array_equal(a, b) for a, b in zip(out['image'], without['image'])]
  assert sum(changed) > BATCH // 2


def test_one_compilation_for_every_step_and_no_transfer_after_placement(ds):
  data = place(ds)
  step_fn = compiled(MIXING, (data.prep.image_size, data.prep.tile_gray))
  prep = jax.device_put(data.prep)
  seed, index = jax.device_put(jnp.int32(3)), jax.device_put(jnp.int32(0))
  steps = [jax.device_put(jnp.int32(s)) for s in range(5)]
  with jax.transfer_guard('disallow'):
    outs = [step_fn(data.source, prep, seed, s, index) for s in steps]
  assert step_fn._cache_size() == 1
  assert len({np.asarray(o['image']).tobytes() for o in outs}) == 5


def test_fits_on_device_compares_the_uint8_bytes_with_free_memory(ds):
  assert on_device.fits_on_device(ds, jax.devices())
  huge = np.broadcast_to(np.zeros((1, 1, 1, 3), np.uint8), (10**7, 224, 224, 3))  # 1.5 TB
  labels = np.zeros(10**7, np.int32)
  big = Dataset('huge', Split(huge, labels), ds.test, 10, ds.mean, ds.std, ds.label_names)
  assert not on_device.fits_on_device(big, jax.devices())


def test_gray_is_tiled_after_mixing_and_only_mixing_adds_targets():
  data = place(toy(channels=1, size=10, grayscale_to_rgb=True), image_size=20)
  mixed = batch(data, MIXING)
  assert mixed['image'].shape == (BATCH, 20, 20, 3)
  np.testing.assert_array_equal(mixed['image'][..., 0], mixed['image'][..., 2])
  assert set(mixed) == {'image', 'label', 'target'}
  assert set(batch(data, AUGMENTED)) == {'image', 'label'}
