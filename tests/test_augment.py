"""Training augmentation and preprocessing: what each switch does to the pixels and labels,
that it is a pure function of (seed, step), and that process slices make up the global batch."""

import ml_collections
import numpy as np
import pytest

from resnet_flax import data as data_lib
from resnet_flax import train_and_evaluate
from resnet_flax.data import augment
from resnet_flax.data.dataset import Dataset, Split, check_image_shape
from resnet_flax.errors import UserError

BATCH = 16


def toy(n=64, size=12, channels=3, classes=5, **fields):
  """Random images; mean 0.5 makes no normalised pixel exactly 0, so zeros are cutout's."""
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8)
  labels = rng.integers(0, classes, n).astype(np.int32)
  return Dataset('toy', Split(images, labels), Split(images[:37], labels[:37]), classes,
                 (0.5,) * channels, (0.25,) * channels, tuple(map(str, range(classes))), **fields)


@pytest.fixture(scope='module')
def ds():
  return toy()


def aug(**fields):
  return ml_collections.ConfigDict({'crop_padding': 0, 'flip': False, **fields})


def batches(ds, a, **kwargs):
  kwargs = {'batch_size': BATCH, 'seed': 0, 'epoch': 0, **kwargs}
  return list(data_lib.train_batches(ds, a, **kwargs))


def unnormalize(images):
  return np.rint(images * 0.25 * 255 + 0.5 * 255).astype(np.int64)


def test_reflect_crop_is_a_shift_of_the_mirror_padded_image(ds):
  out = unnormalize(batches(ds, aug(crop_padding=3, crop_mode='reflect'))[0]['image'])
  order = np.random.default_rng([0, 0]).permutation(len(ds.train))[:BATCH]
  offsets = set()
  for image, idx in zip(out, order):
    padded = np.pad(ds.train.images[idx].astype(np.int64), ((3, 3), (3, 3), (0, 0)), 'reflect')
    found = [(dy, dx) for dy in range(7) for dx in range(7)
             if np.array_equal(image, padded[dy:dy + 12, dx:dx + 12])]
    assert found, 'an augmented image is not a crop of its mirror-padded original'
    offsets.update(found)
  assert len(offsets) > 3  # really shifted, into the mirrored border


def zero_box(image):
  """(y0, y1, x0, x1) of the pixels that are 0 in every channel, checked to be a filled box."""
  zero = (image == 0).all(-1)
  ys, xs = np.nonzero(zero.any(1))[0], np.nonzero(zero.any(0))[0]
  box = (ys[0], ys[-1] + 1, xs[0], xs[-1] + 1)
  assert zero.sum() == (box[1] - box[0]) * (box[3] - box[2]) and zero[ys[0]:box[1], xs[0]:box[3]].all()
  return box


def check_cutout_square(box, size, image_size=12):
  y0, y1, x0, x1 = box
  for lo, hi in ((y0, y1), (x0, x1)):
    assert hi - lo == size or ((lo == 0 or hi == image_size) and hi - lo < size)


@pytest.mark.parametrize('per_batch', [False, True])
def test_cutout_zeroes_a_square_clipped_at_the_border(ds, per_batch):
  plain = batches(ds, aug())
  cut = batches(ds, aug(cutout=5, cutout_per_batch=per_batch))
  boxes = []
  for ref, out in zip(plain, cut):
    batch_boxes = {zero_box(image) for image in out['image']}
    for box in batch_boxes:
      check_cutout_square(box, 5)
    keep = ~(out['image'] == 0).all(-1, keepdims=True)
    np.testing.assert_array_equal(np.where(keep, ref['image'], 0), out['image'])
    assert (len(batch_boxes) == 1) == per_batch  # one shared square, or one per image
    boxes.extend(batch_boxes)
  assert len(set(boxes)) > 1


def mixing_draws(ds, a, steps):
  return augment.batch_draws(augment.Augment.from_config(a), 0, 0, steps, BATCH, ds.image_shape)


def check_mixed(ds, a, plain, mixed):
  """Each batch is mixup or cutmix of the plain batch with its drawn permutation."""
  draws = mixing_draws(ds, a, len(plain))
  for step, (ref, out) in enumerate(zip(plain, mixed)):
    lam, partner, (y0, y1, x0, x1) = draws.lam[step], draws.partner[step], draws.box[step]
    a_img, b_img = ref['image'], ref['image'][partner]
    if draws.cutmix[step]:
      expected = a_img.copy()
      expected[:, y0:y1, x0:x1] = b_img[:, y0:y1, x0:x1]
      np.testing.assert_array_equal(out['image'], expected)
      assert lam == pytest.approx(1 - (y1 - y0) * (x1 - x0) / 144)
    else:
      np.testing.assert_allclose(out['image'], lam * a_img + (1 - lam) * b_img, atol=1e-5)
    classes = np.eye(ds.num_classes, dtype=np.float32)
    expected_target = lam * classes[ref['label']] + (1 - lam) * classes[ref['label'][partner]]
    np.testing.assert_allclose(out['target'], expected_target, atol=1e-6)
    np.testing.assert_allclose(out['target'].sum(1), 1.0, atol=1e-6)
    assert out['target'].dtype == np.float32 and out['target'].shape == (BATCH, ds.num_classes)
    np.testing.assert_array_equal(out['label'], ref['label'])  # the primary label stays
  return draws


def test_mixup_blends_with_a_permuted_batch(ds):
  a = aug(mixup_alpha=1.0)
  draws = check_mixed(ds, a, batches(ds, aug()), batches(ds, a))
  assert not draws.cutmix.any() and 0 < draws.lam.min() < draws.lam.max() < 1


def test_cutmix_pastes_a_box_and_weighs_labels_by_area(ds):
  a = aug(cutmix_alpha=1.0)
  draws = check_mixed(ds, a, batches(ds, aug()), batches(ds, a))
  assert draws.cutmix.all() and (draws.box[:, 1] > draws.box[:, 0]).any()


def test_both_switch_per_batch(ds):
  a = aug(mixup_alpha=0.4, cutmix_alpha=1.0, mix_switch_prob=0.5)
  more = toy(n=200)
  draws = check_mixed(more, a, batches(more, aug()), batches(more, a))
  assert draws.cutmix.any() and not draws.cutmix.all()


def test_no_target_without_mixing(ds):
  batch = batches(ds, aug(crop_padding=2, flip=True, cutout=3))[0]
  assert set(batch) == {'image', 'label'} and batch['label'].dtype == np.int32


EVERY_AUGMENTATION = {
    'reflect_crop_flip': aug(crop_padding=4, crop_mode='reflect', flip=True),
    'cutout_per_image': aug(crop_padding=2, flip=True, cutout=4),
    'cutout_per_batch': aug(cutout=4, cutout_per_batch=True),
    'mixup': aug(crop_padding=2, flip=True, mixup_alpha=0.2),
    'cutmix_and_mixup_and_cutout': aug(crop_padding=2, flip=True, cutout=3,
                                       cutout_per_batch=True, mixup_alpha=0.2,
                                       cutmix_alpha=1.0),
}


@pytest.mark.parametrize('name', EVERY_AUGMENTATION)
def test_two_process_slices_make_up_the_one_process_batch(ds, name):
  a = EVERY_AUGMENTATION[name]
  one = batches(ds, a, start_step=1)
  halves = [batches(ds, a, start_step=1, process_index=i, process_count=2) for i in (0, 1)]
  assert len(one) == len(halves[0]) == len(halves[1]) == 3
  for whole, first, second in zip(one, *halves):
    assert set(whole) == set(first) == set(second)
    for key in whole:
      np.testing.assert_array_equal(whole[key], np.concatenate([first[key], second[key]]))


def test_same_seed_same_batches_other_seed_or_epoch_differs(ds):
  a = EVERY_AUGMENTATION['cutmix_and_mixup_and_cutout']
  first = batches(ds, a)[0]
  again = batches(ds, a)[0]
  for key in first:
    np.testing.assert_array_equal(first[key], again[key])
  for other in (batches(ds, a, seed=1)[0], batches(ds, a, epoch=1)[0]):
    assert not np.array_equal(first['image'], other['image'])
    assert not np.array_equal(first['target'], other['target'])


def test_resize_and_grayscale_to_rgb_apply_to_train_and_eval_alike():
  gray = toy(channels=1, size=10, grayscale_to_rgb=True)
  assert data_lib.input_shape(gray, 20) == (20, 20, 3)
  train = batches(gray, aug(crop_padding=2, flip=True, cutout=4, mixup_alpha=1.0),
                  image_size=20)[0]['image']
  assert train.shape == (BATCH, 20, 20, 3)
  np.testing.assert_array_equal(train[..., 0], train[..., 2])  # tiled gray, even when mixed
  plain = batches(gray, aug(), image_size=20)[0]
  order = np.random.default_rng([0, 0]).permutation(len(gray.train))[:BATCH]
  first = Split(gray.train.images[order], gray.train.labels[order])
  evaluated = next(data_lib.eval_batches(gray, first, BATCH, 20))
  np.testing.assert_allclose(evaluated['image'], plain['image'], atol=1e-5)
  np.testing.assert_array_equal(evaluated['label'], plain['label'])


@pytest.mark.parametrize('image_size', [0, 24])
def test_per_pixel_mean_centres_every_pixel(make_config, image_size):
  ds = data_lib.load_dataset(make_config(**{'data.normalization': 'per_pixel_mean'}))
  assert ds.pixel_mean.shape == (16, 16, 3) and ds.pixel_mean.dtype == np.float32
  images = np.concatenate([b['image'] for b in data_lib.eval_batches(ds, ds.train, 96, image_size)])
  assert images.shape[1:3] == ((image_size or 16),) * 2
  np.testing.assert_allclose(images.mean(0), 0.0, atol=1e-4)
  assert images.std() > 0.5


@pytest.mark.parametrize('batch_size', [2, 6, 36, 38])
def test_eval_slices_of_two_processes_count_every_image_once(ds, batch_size):
  one = list(data_lib.eval_batches(ds, ds.test, batch_size))
  halves = [list(data_lib.eval_batches(ds, ds.test, batch_size, process_index=i, process_count=2))
            for i in (0, 1)]
  for whole, first, second in zip(one, *halves):
    for key in whole:
      np.testing.assert_array_equal(whole[key], np.concatenate([first[key], second[key]]))
  mask = np.concatenate([b['mask'] for b in one])
  assert mask.sum() == 37 and len(one) == -(-37 // batch_size)
  np.testing.assert_array_equal(np.concatenate([b['label'] for b in one])[mask == 1], ds.test.labels)


@pytest.mark.parametrize('overrides,message', [
    ({'augment.crop_mode': 'edge'}, "crop_mode='edge': use one of 'zero', 'reflect'"),
    ({'augment.crop_mode': 'reflect', 'augment.crop_padding': 16}, 'smaller than the 16x16'),
    ({'augment.cutout': 17}, 'cutout=17 exceeds the 16x16'),
    ({'augment.mixup_alpha': -0.2}, 'mixup_alpha=-0.2 must be 0'),
    ({'augment.mix_switch_prob': 1.5}, 'from 0 to 1'),
    ({'data.normalization': 'per_image'}, "use one of 'per_channel', 'per_pixel_mean'"),
    ({'data.image_size': -8}, 'image_size=-8 must be a positive size'),
    ({'data.cifar100_labels': 'coarse'}, 'CIFAR-100 only, not synthetic'),
    ({'data.train_split': 'train[:50%]'}, 'synthetic has fixed train and test splits'),
])
def test_bad_settings_fail_when_the_data_is_loaded(make_config, overrides, message):
  with pytest.raises(UserError, match=message.replace('[', r'\[').replace('(', r'\(')):
    data_lib.load_dataset(make_config(**overrides))


def test_check_image_shape_names_the_fix():
  check_image_shape((32, 32, 3), min_size=32, channels=3)
  with pytest.raises(UserError, match='image_size=32'):
    check_image_shape((28, 28, 1), min_size=32)
  with pytest.raises(UserError, match='grayscale_to_rgb=True'):
    check_image_shape((28, 28, 1), channels=3)
  with pytest.raises(UserError, match='empty dimension'):
    check_image_shape((0, 0, 3))


@pytest.mark.slow  # compiles a ResNet-20 step
def test_training_runs_with_soft_targets_and_every_switch(make_config, tmp_path):
  """The train step takes the mixed batches ('target' included) end to end."""
  config = make_config(**{
      'augment.crop_mode': 'reflect', 'augment.cutout': 4, 'augment.cutout_per_batch': True,
      'augment.mixup_alpha': 0.2, 'augment.cutmix_alpha': 1.0, 'data.validation_size': 16,
      'data.normalization': 'per_pixel_mean', 'data.image_size': 20, 'num_epochs': 1})
  result = train_and_evaluate(config, str(tmp_path))
  assert result['step'] == 2 and np.isfinite(result['test_loss'])
