"""The pure, compiled steps: `train_step(state, batch)` and `eval_step(state, batch)`."""

import jax
import jax.numpy as jnp
import optax

from resnet_flax.train_state import TrainState


def cross_entropy(logits: jax.Array, labels: jax.Array, label_smoothing: float = 0.0,
                  targets: jax.Array | None = None) -> jax.Array:
  """Per-example float32 cross-entropy against one-hot labels (or soft `targets`, e.g. from
  mixup) smoothed towards uniform (Szegedy et al.)."""
  logits = logits.astype(jnp.float32)
  if targets is None and not label_smoothing:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  if targets is None:
    targets = jax.nn.one_hot(labels, logits.shape[-1])
  return optax.softmax_cross_entropy(logits, optax.smooth_labels(targets, label_smoothing))


def train_step(state: TrainState, batch: dict[str, jax.Array], rng: jax.Array,
               schedule: optax.Schedule,
               label_smoothing: float = 0.0) -> tuple[TrainState, dict[str, jax.Array]]:
  """One optimizer step in train mode: loss, gradients, BN statistics update and metrics.

  Dropout draws from `rng` folded with the step, so a resumed run draws the same masks.
  """
  def loss_fn(params):
    logits, updates = state.apply_fn(
        {'params': params, 'batch_stats': state.batch_stats}, batch['image'], train=True,
        mutable=['batch_stats'], rngs={'dropout': jax.random.fold_in(rng, state.step)})
    loss = cross_entropy(logits, batch['label'], label_smoothing, batch.get('target')).mean()
    return loss, (updates.get('batch_stats', {}), logits)

  (loss, (batch_stats, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  metrics = {'loss': loss,
             'accuracy': jnp.mean(jnp.argmax(logits, -1) == batch['label']),
             'learning_rate': schedule(state.step)}
  return state.apply_gradients(grads=grads, batch_stats=batch_stats), metrics


def eval_step(state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
  """Eval-mode sums over the real (mask == 1) examples; divide by 'count' after summing batches."""
  logits = state.apply_fn({'params': state.params, 'batch_stats': state.batch_stats},
                          batch['image'], train=False)
  mask = batch['mask']
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch['label'])
  correct = (jnp.argmax(logits, -1) == batch['label']).astype(jnp.float32)
  return {'loss': jnp.sum(loss * mask), 'correct': jnp.sum(correct * mask), 'count': jnp.sum(mask)}
