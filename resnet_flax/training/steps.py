"""The pure, compiled training step: `train_step(state, batch, rng)` (evaluation: evaluation.py)."""


import jax
import jax.numpy as jnp
import optax

from resnet_flax.training.train_state import TrainState


def cross_entropy(logits: jax.Array, labels: jax.Array, label_smoothing: float = 0.0,
                  targets: jax.Array | None = None) -> jax.Array:
  """Per-example cross-entropy against one-hot labels (or soft `targets`, e.g. from mixup)
  smoothed towards uniform (Szegedy et al.), in float32 (float64 logits stay float64)."""
  logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
  if targets is None and not label_smoothing:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  if targets is None:
    targets = jax.nn.one_hot(labels, logits.shape[-1])
  return optax.softmax_cross_entropy(logits, optax.smooth_labels(targets, label_smoothing))


def train_step(state: TrainState, batch: dict[str, jax.Array], rng: jax.Array, *,
               schedule: optax.Schedule, label_smoothing: float = 0.0,
               axis_name: str | None = None, sam: str | None = None,
               ema_decay: float = 0.0) -> tuple[TrainState, dict[str, jax.Array]]:
  """One optimizer step in train mode: loss, gradients, BN statistics update and metrics.

  Dropout draws from `rng` folded with the step (and the device under `axis_name`), so a
  resumed run draws the same masks. Under pmap/shard_map (`axis_name`) the gradients,
  metrics and BN running statistics are averaged over the devices, which keeps the state
  replicated; averaging the running statistics at every step equals averaging them once
  before use, since they are linear in the per-step statistics.

  `sam` ('global' or 'per_device'; None: off): the optimizer is optax.contrib.sam and takes
  the adversarial gradient function. 'global' perturbs the weights along the whole batch's
  gradient; 'per_device' along each device's own, as Foret et al.'s code does (m-sharpness).
  """
  if axis_name:
    rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
  dropout_rng = jax.random.fold_in(rng, state.step)

  def loss_fn(params):
    logits, updates = state.apply_fn(
        {'params': params, 'batch_stats': state.batch_stats}, batch['image'], train=True,
        mutable=['batch_stats'], rngs={'dropout': dropout_rng})
    loss = cross_entropy(logits, batch['label'], label_smoothing, batch.get('target')).mean()
    return loss, (updates.get('batch_stats', {}), logits)

  (loss, (batch_stats, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  metrics = {'loss': loss,
             'accuracy': jnp.mean(jnp.argmax(logits, -1) == batch['label']),
             'learning_rate': schedule(state.step)}
  extra = {}
  if sam:
    extra['grad_fn'] = lambda params, _: jax.grad(lambda p: loss_fn(p)[0])(params)
  if axis_name:
    metrics, batch_stats = jax.lax.pmean((metrics, batch_stats), axis_name)
    if sam != 'per_device':  # SAM averages the adversarial gradients itself
      grads = jax.lax.pmean(grads, axis_name)
  updates, opt_state = state.tx.update(grads, state.opt_state, state.params, **extra)
  new_state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                            opt_state=opt_state, batch_stats=batch_stats)
  if ema_decay:
    new_state = new_state.replace(ema=optax.incremental_update(
        {'params': new_state.params, 'batch_stats': batch_stats}, state.ema, 1.0 - ema_decay))
  return new_state, metrics
