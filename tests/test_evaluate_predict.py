"""Evaluation and prediction from a trained run's checkpoints (one tiny run, trained once)."""

import json
import os
import re
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from resnet_flax import data as data_lib
from resnet_flax import evaluate, predict, train_and_evaluate
from resnet_flax.errors import UserError
from resnet_flax.errors import exit_on_user_error
from resnet_flax.checkpoints.restore_run import restore_run
from tests.conftest import small_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """(workdir, the final metrics train_and_evaluate returned): checkpoints at steps 3 and 6."""
  workdir = str(tmp_path_factory.mktemp('run'))
  return workdir, train_and_evaluate(small_config(), workdir)


@pytest.fixture(scope='module')
def evaluated(run):
  return evaluate.evaluate(run[0])


@pytest.fixture(scope='module')
def test_split():
  return data_lib.load_dataset(small_config()).test


def test_evaluation_equals_the_final_metrics_of_training(run, evaluated):
  _, final = run
  assert evaluated['step'] == final['step'] == 6
  assert evaluated['count'] == 40
  assert evaluated['top1_accuracy'] == pytest.approx(final['test_accuracy'], abs=1e-6)
  assert evaluated['loss'] == pytest.approx(final['test_loss'], abs=1e-6)


def test_per_class_accuracy_agrees_with_confusion_matrix_and_top1(evaluated, test_split):
  confusion = np.asarray(evaluated['confusion'])
  per_class = evaluated['per_class']
  np.testing.assert_array_equal(confusion.sum(1), np.bincount(test_split.labels, minlength=10))
  np.testing.assert_array_equal([c['count'] for c in per_class], confusion.sum(1))
  np.testing.assert_array_equal([c['correct'] for c in per_class], np.diag(confusion))
  for c in per_class:
    assert c['accuracy'] == (c['correct'] / c['count'] if c['count'] else None)
  assert evaluated['top1_accuracy'] == np.trace(confusion) / confusion.sum()
  assert evaluated['top5_k'] == 5
  assert evaluated['top1_accuracy'] <= evaluated['top5_accuracy'] <= 1.0


def test_results_are_written_as_json_and_a_valid_png(run, evaluated):
  files = evaluated['files']
  assert files['json'] == os.path.join(run[0], 'eval', 'test_step6.json')
  with open(files['json']) as f:
    saved = json.load(f)
  assert saved == {k: v for k, v in evaluated.items() if k != 'files'} | {
      'confusion_axes': 'rows: true label, columns: predicted label'}
  with open(files['confusion_png'], 'rb') as f:
    assert f.read(8) == PNG_SIGNATURE
  with Image.open(files['confusion_png']) as image:
    assert image.format == 'PNG' and min(image.size) > 0


@pytest.mark.parametrize('batch_size', [7, 1000])
def test_awkward_batch_sizes_give_the_same_metrics(run, evaluated, batch_size):
  other = evaluate.evaluate(run[0], batch_size=batch_size)
  assert other['confusion'] == evaluated['confusion']
  assert other['top5_accuracy'] == evaluated['top5_accuracy']
  assert other['loss'] == pytest.approx(evaluated['loss'], rel=1e-6)


def test_an_earlier_step_on_the_train_split(run):
  result = evaluate.evaluate(run[0], step=3, split='train')
  assert result['step'] == 3 and result['count'] == 96
  assert os.path.isfile(os.path.join(run[0], 'eval', 'train_step3.json'))


def test_confusion_png_for_100_classes(tmp_path):
  confusion = np.random.default_rng(0).integers(0, 50, size=(100, 100))
  path = str(tmp_path / 'c.png')
  evaluate._plot_confusion(confusion, [f'class_{i}' for i in range(100)], 'title', path)
  with Image.open(path) as image:
    assert image.format == 'PNG' and min(image.size) > 500


def test_missing_step_fails_listing_the_available_ones(run):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  proc = subprocess.run([sys.executable, '-m', 'resnet_flax.evaluate', '--workdir', run[0],
                         '--step', '99'], cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == 2
  assert proc.stderr.startswith('error: --step 99:') and 'Available steps: 3, 6.' in proc.stderr
  assert 'Traceback' not in proc.stderr


def test_a_workdir_without_checkpoints_fails_clearly(tmp_path):
  expected = f'No checkpoints in {tmp_path}/checkpoints. Training writes'
  with pytest.raises(UserError, match=re.escape(expected)):
    evaluate.evaluate(str(tmp_path))
  assert not os.listdir(tmp_path)  # nothing created while looking
  os.mkdir(tmp_path / 'checkpoints')
  with pytest.raises(UserError, match='No checkpoints in'):
    restore_run(str(tmp_path))


def test_a_damaged_checkpoint_is_skipped_by_default_and_refused_by_step(run, tmp_path, capsys):
  workdir = str(tmp_path / 'run')
  shutil.copytree(run[0], workdir)
  shutil.rmtree(os.path.join(workdir, 'checkpoints', '6', 'state'))
  assert restore_run(workdir)[3]['step'] == 3
  assert 'warning: Checkpoint 6 in' in capsys.readouterr().err
  with pytest.raises(UserError, match='Checkpoint 6 in .* cannot be read'):
    restore_run(workdir, step=6)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['3', '6']  # nothing moved


@pytest.fixture(scope='module')
def inputs(tmp_path_factory, test_split):
  """Three test images as PNGs, and the first five as a uint8 .npy batch."""
  directory = tmp_path_factory.mktemp('inputs')
  pngs = []
  for i in range(3):
    pngs.append(str(directory / f'image{i}.png'))
    Image.fromarray(test_split.images[i]).save(pngs[-1])
  npy = str(directory / 'batch.npy')
  np.save(npy, test_split.images[:5])
  return pngs, npy


@pytest.fixture(scope='module')
def direct_logits(run):
  """The model's logits for the test split, normalised by the eval pipeline itself."""
  config, model, state, _ = restore_run(run[0])
  dataset = data_lib.load_dataset(config)
  batch = next(data_lib.eval_batches(dataset.test, len(dataset.test)))
  prep = data_lib.Preprocess.from_dataset(dataset, config.data.image_size)
  apply = jax.jit(lambda variables, images: model.apply(variables, prep(images), train=False))
  return np.asarray(apply({'params': state.params, 'batch_stats': state.batch_stats},
                          batch['image']))


def test_predictions_match_the_models_logits(run, inputs, direct_logits):
  pngs, npy = inputs
  result = predict.predict(run[0], [*pngs, npy])
  predictions = result['predictions']
  assert result['step'] == 6
  assert [(p['file'], p['index']) for p in predictions] == (
      [(f, None) for f in pngs] + [(npy, i) for i in range(5)])
  expected = [*range(3), *range(5)]  # test-split index of each prediction
  probabilities = jax.nn.softmax(direct_logits)
  for p, i in zip(predictions, expected):
    probs = [t['probability'] for t in p['top']]
    assert len(probs) == 5 and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
    assert p['top'][0]['label'] == np.argmax(direct_logits[i])
    assert p['top'][0]['name'] == str(p['top'][0]['label'])
    assert probs[0] == pytest.approx(float(probabilities[i].max()), abs=1e-5)
  assert predictions[0]['top'] == predictions[3]['top']  # the same image, from PNG and .npy


def test_predict_cli_prints_json(run, inputs, capsys):
  predict.main(['--workdir', run[0], '--json', inputs[0][0]])
  printed = json.loads(capsys.readouterr().out)
  assert printed['predictions'][0]['file'] == inputs[0][0]
  assert len(printed['predictions'][0]['top']) == 5


def test_unreadable_image_exits_2_naming_it(run, tmp_path, capsys):
  bad = tmp_path / 'x.png'
  bad.write_text('not an image')
  with pytest.raises(SystemExit) as exit_info:
    exit_on_user_error(lambda: predict.main(['--workdir', run[0], str(bad)]))
  assert exit_info.value.code == 2
  assert capsys.readouterr().err.startswith(f'error: {bad}: cannot be read as an image')


@pytest.mark.parametrize('array, message', [
    (np.zeros((2, 16, 16, 2), np.uint8), r'shape \(2, 16, 16, 2\)'),
    (np.zeros((16, 16), np.uint8), r'shape \(16, 16\)'),
    (np.full((16, 16, 3), 300.0), r'outside \[0, 255\]'),
    (np.full((16, 16, 3), np.nan), r'outside \[0, 255\]'),
    (np.zeros((16, 16, 3), bool), 'bool'),
])
def test_bad_npy_arrays_are_refused(tmp_path, array, message):
  path = str(tmp_path / 'a.npy')
  np.save(path, array)
  with pytest.raises(UserError, match=message):
    predict.load_inputs([path], (16, 16, 3))


def test_float_npy_and_single_images_are_read(tmp_path, test_split):
  one, big = str(tmp_path / 'one.npy'), str(tmp_path / 'big.JPG')
  np.save(one, test_split.images[0].astype(np.float32))
  Image.fromarray(test_split.images[0]).resize((40, 30)).save(big, format='JPEG')
  images, sources = predict.load_inputs([one, big], (16, 16, 3))
  assert images.shape == (2, 16, 16, 3) and images.dtype == np.float32
  np.testing.assert_array_equal(images[0], test_split.images[0])
  assert sources == [(one, 0), (big, None)]


def test_colour_images_are_converted_for_a_grayscale_model(tmp_path, test_split):
  path = str(tmp_path / 'rgb.png')
  Image.fromarray(test_split.images[0]).save(path)
  images, _ = predict.load_inputs([path], (16, 16, 1))
  expected = np.asarray(Image.fromarray(test_split.images[0]).convert('L'), np.float32)
  np.testing.assert_array_equal(images[0, ..., 0], expected)


@pytest.mark.parametrize('name', ['missing.png', 'notes.txt'])
def test_missing_and_unknown_files_are_named(tmp_path, name):
  (tmp_path / 'notes.txt').write_text('hello')
  path = str(tmp_path / name)
  with pytest.raises(UserError, match=f'{path}: (no such file|unknown kind of file)'):
    predict.check_paths([path])
