"""A validation set carved from the training split: fixed, stratified, independent of config.seed.

Fixed so that runs with different seeds are tuned and compared on the same held-out images
(He et al. 2016 hold out 5k of CIFAR-10's 50k training images this way).
"""

import numpy as np

from resnet_flax.data.dataset import Split
from resnet_flax.errors import UserError

SEED = 2016  # the split's own seed; changing it changes every validation set


def carve_validation(split: Split, size: int) -> tuple[Split, Split]:
  """(train, validation): `size` images drawn per class in proportion, the rest left to train.

  Both keep the original order of the images. Class quotas are proportional, rounded by
  largest remainder so they sum to exactly `size`.
  """
  n = len(split)
  if not 0 < size < n:
    raise UserError(f'--config.data.validation_size={size} must be 0 (no validation set) or '
                    f'between 1 and {n - 1}: the training split has {n} images and some must '
                    'stay for training.')
  counts = np.bincount(split.labels)
  quotas = size * counts / n
  take = np.floor(quotas).astype(np.int64)
  by_remainder = np.lexsort((np.arange(len(counts)), -(quotas - take)))  # ties: lower class first
  take[by_remainder[:size - take.sum()]] += 1
  shuffled = np.random.default_rng(SEED).permutation(n)
  grouped = shuffled[np.argsort(split.labels[shuffled], kind='stable')]  # by class, shuffled within
  starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
  held_out = np.concatenate([grouped[s:s + k] for s, k in zip(starts, take)])
  is_validation = np.zeros(n, bool)
  is_validation[held_out] = True
  return (Split(split.images[~is_validation], split.labels[~is_validation]),
          Split(split.images[is_validation], split.labels[is_validation]))
