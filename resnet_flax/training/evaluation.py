"""One evaluation loop, for training's periodic evaluations and `python -m resnet_flax.evaluate`.

Sums over padded, masked uint8 batches (data.eval_batches), preprocessed inside the compiled
step exactly as training batches are; dividing by the true count makes every image count once.
"""

import functools
from collections.abc import Callable, Iterable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from resnet_flax.data.dataset import Dataset
from resnet_flax.data.host_batches import eval_batches
from resnet_flax.data.preprocess import Preprocess


def eval_variables(state: Any) -> dict[str, Any]:
  """The weights evaluation uses: the moving averages when EMA is on, else the trained ones."""
  if state.ema is not None:
    return state.ema
  return {'params': state.params, 'batch_stats': state.batch_stats}


class Evaluator:
  """Totals of a model over batches: loss sum, top-k hits and the confusion matrix."""

  def __init__(self, model: nn.Module, prep: Preprocess, num_classes: int,
               to_device: Callable[[np.ndarray], jax.Array] = jnp.asarray,
               replicated: jax.sharding.Sharding | None = None):
    """`to_device` places each array of a host batch (e.g. this process's slice of a global
    batch); `replicated`, when given, is where the totals are kept (readable by every process)."""
    self.k = min(5, num_classes)
    self.num_classes, self.to_device = num_classes, to_device
    # The preprocessing constants are closed over: the same in every process, nothing to place.
    self._accumulate = jax.jit(functools.partial(accumulate, model=model, prep=prep, k=self.k),
                               out_shardings=replicated)
    self._zeros = jax.jit(lambda: {
        'loss': jnp.zeros((), jnp.float32), 'top_k': jnp.zeros((), jnp.int32),
        'confusion': jnp.zeros((num_classes, num_classes), jnp.int32)}, out_shardings=replicated)

  def totals(self, variables: dict[str, Any],
             batches: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    totals = self._zeros()
    for batch in batches:
      totals = self._accumulate(variables, totals, jax.tree.map(self.to_device, batch))
    return jax.device_get(totals)


def accumulate(variables: dict[str, Any], totals: dict[str, jax.Array],
                batch: dict[str, jax.Array], *, model: nn.Module, prep: Preprocess,
                k: int) -> dict[str, jax.Array]:
  """Adds one batch's masked loss sum, top-k hits and confusion counts (BN in inference mode)."""
  logits = model.apply(variables, prep(batch['image']), train=False)
  labels, mask = batch['label'], batch['mask']
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  in_top_k = jnp.any(jax.lax.top_k(logits, k)[1] == labels[:, None], axis=-1)
  real = mask.astype(jnp.int32)
  return {'loss': totals['loss'] + jnp.sum(loss * mask),
          'top_k': totals['top_k'] + jnp.sum(in_top_k * real),
          'confusion': totals['confusion'].at[labels, jnp.argmax(logits, -1)].add(real)}


def metrics(totals: dict[str, np.ndarray], prefix: str) -> dict[str, float]:
  """{prefix}_loss, _accuracy and _top5_accuracy (top-k with k = min(5, classes))."""
  count = int(totals['confusion'].sum())
  return {f'{prefix}_loss': float(totals['loss']) / count,
          f'{prefix}_accuracy': int(np.trace(totals['confusion'])) / count,
          f'{prefix}_top5_accuracy': int(totals['top_k']) / count}


def evaluate_splits(dataset: Dataset, batch_size: int, evaluator: Evaluator, state: Any) -> dict[str, float]:
  """Test metrics, and validation metrics ('val_*') when the dataset has that split."""
  out = {}
  for prefix, split in (('test', dataset.test), ('val', dataset.validation)):
    if split is not None:
      batches = eval_batches(split, batch_size, jax.process_index(), jax.process_count())
      totals = evaluator.totals(eval_variables(state), batches)
      out |= metrics(totals, prefix)
  return out
