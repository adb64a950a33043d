"""The start-up banner: the model table and one line on how the run is laid out."""

import flax.linen as nn
import jax
import ml_collections

from resnet_flax import models
from resnet_flax.data import Dataset
from resnet_flax.training import optim


def describe(config: ml_collections.ConfigDict, model: nn.Module, dataset: Dataset,
              image_shape: tuple[int, ...], total_steps: int, data_from: str,
              cpu_devices: str, parts: str, cache: str) -> str:
  """The model table and one line on how the run is laid out, printed at start."""
  table = models.summarize(model, image_shape).table(
      f'{config.model.name} on {dataset.name} ({len(dataset.train):,} train / '
      f'{len(dataset.test):,} test images, input {"x".join(map(str, image_shape))}):')
  devices = jax.device_count()
  lr = optim.peak_learning_rate(config.optim, config.batch_size)
  how = f' ({cpu_devices})' if jax.default_backend() == 'cpu' else ''
  return (f'{table}\n{jax.process_count()} process(es), {devices} {jax.default_backend()} '
          f'device(s){how}, {config.parallel.mode} with {config.parallel.batch_norm} BatchNorm, '
          f'{parts}, '
          f'training data {data_from}; '
          f'{total_steps:,} steps of {config.batch_size} ({config.batch_size // devices} per '
          f'device), peak lr {lr:g}; {cache}.')
