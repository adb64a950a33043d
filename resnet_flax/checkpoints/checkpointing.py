"""Orbax checkpoints of the TrainState plus a JSON record (config, data position, ...) beside it.

Saves are asynchronous. The newest checkpoints and the best ones by an eval metric are
kept. A checkpoint that cannot be read is moved aside (never deleted) and the one
before it is used.
"""

import os
import shutil
import time
from typing import Any, Callable

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from resnet_flax.checkpoints import quiet
from resnet_flax.errors import UserError
from resnet_flax.training.train_state import TrainState


SLOW_WAIT_TEST_HOOK = 'RESNET_FLAX_TEST_HOOK_SLOW_WAIT_S'  # see _slow_wait_test_hook


class Checkpointer:
  """Saves `{state, meta}` under workdir/checkpoints/<step>."""

  def __init__(self, workdir: str, keep: int, keep_best: int = 0,
               best_metric: str = 'test_accuracy', read_only: bool = False):
    """`read_only` for readers (evaluate, predict): they must not clean up a running save."""
    self.workdir = os.path.abspath(workdir)
    self.directory = os.path.join(self.workdir, 'checkpoints')
    policies = [checkpoint_managers.LatestN(keep)]
    if keep_best:  # BestN keeps the last n in sorted order: ascending unless `reverse`
      policies.append(checkpoint_managers.BestN(
          get_metric_fn=lambda m: m[best_metric], reverse=best_metric.endswith('loss'), n=keep_best,
          keep_checkpoints_without_metrics=False))
    self._options = ocp.CheckpointManagerOptions(
        create=not read_only, cleanup_tmp_directories=not read_only, read_only=read_only,
        preservation_policy=checkpoint_managers.AnyPreservationPolicy(policies))
    self._manager = ocp.CheckpointManager(self.directory, options=self._options)

  def steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, state: TrainState, meta: dict[str, Any],
           metrics: dict[str, float] | None = None) -> None:
    """Starts an asynchronous save at `state.step`; training goes on while it writes."""
    step = int(state.step)
    try:
      self._manager.save(step, metrics=metrics, force=True, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
    except Exception as e:  # an earlier async save may surface its failure here
      raise self._save_error(e) from e

  def wait(self) -> None:
    """Blocks until every started save is on disk; raises UserError if one failed."""
    _slow_wait_test_hook()
    try:
      self._manager.wait_until_finished()
    except Exception as e:
      raise self._save_error(e) from e

  def read_meta(self, step: int) -> dict[str, Any]:
    return self._manager.restore(step, args=ocp.args.Composite(
        meta=ocp.args.JsonRestore())).meta

  def restore(self, step: int, target: TrainState) -> TrainState:
    """Restores `step` onto `target`'s structure, shapes and current shardings."""
    quiet.drop_stray_loop_tracebacks()  # a failed read's stray TensorStore callbacks print them
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    return self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract))).state

  def restore_latest_readable(
      self, target: TrainState, check: Callable[[dict[str, Any]], None] = lambda meta: None,
      converters: Callable[[dict[str, Any]], tuple[Callable, Callable]] | None = None,
  ) -> tuple[TrainState, dict[str, Any]] | None:
    """The newest checkpoint that reads back, or None when there is none.

    `check(meta)` may raise UserError (e.g. the checkpoint is of another run); that
    propagates. A checkpoint that fails to read is set aside (moved to
    workdir/corrupt_checkpoints/, with a warning) only once an older one restores: when
    none does, the cause is more likely the code or the machine than the files, so
    nothing is moved and a UserError says what failed. `converters(meta)`: (to the saved
    structure, back to `target`'s), for a checkpoint saved in another layout (relayout.py).
    """
    failed: list[tuple[int, Exception]] = []
    for step in reversed(self.steps()):
      try:
        meta = self.read_meta(step)
      except Exception as e:  # unreadable record: corrupt or half-written
        failed.append((step, e))
        continue
      check(meta)
      to_saved, from_saved = converters(meta) if converters else (None, None)
      try:
        state = (from_saved(self.restore(step, to_saved(target))) if converters
                 else self.restore(step, target))
      except Exception as e:
        failed.append((step, e))
        continue
      for bad_step, error in failed:
        self._set_aside(bad_step, error)
      return state, meta
    if failed:
      step, error = failed[0]
      raise UserError(
          f'None of the {len(failed)} checkpoints in {self.directory} could be restored; the '
          f'newest, step {step}, failed with {quiet.describe(error)}. Nothing '
          'was moved or deleted. If the code, the libraries or the model changed since they were '
          'written, go back to the versions that wrote them; to start over, use a new --workdir.')
    return None

  def close(self) -> None:
    """Waits for saves in flight and stops orbax's threads; a second call does nothing."""
    if self._manager is not None:
      manager, self._manager = self._manager, None
      _close(manager)

  def _set_aside(self, step: int, error: Exception) -> None:
    aside = os.path.join(self.workdir, 'corrupt_checkpoints', f'{step}-{int(time.time())}')
    os.makedirs(os.path.dirname(aside), exist_ok=True)
    shutil.move(os.path.join(self.directory, str(step)), aside)
    print(f'warning: Checkpoint {step} in {self.directory} cannot be read '
          f'({quiet.describe(error)}); moved it to {aside} and trying the one before it.')
    _close(self._manager)
    self._manager = ocp.CheckpointManager(self.directory, options=self._options)

  def _save_error(self, error: Exception) -> UserError:
    return UserError(
        f'Saving a checkpoint to {self.directory} failed ({type(error).__name__}: '
        f'{str(error)[:300]}). The checkpoints saved before it are intact. Free disk space or '
        'fix the permissions of --workdir, then rerun the same command to resume.')


def _slow_wait_test_hook() -> None:
  """Test hook: $RESNET_FLAX_TEST_HOOK_SLOW_WAIT_S=seconds makes every wait() announce itself
  and last that long, so that a test can signal a run while its final save is in progress."""
  seconds = os.environ.get(SLOW_WAIT_TEST_HOOK)
  if seconds:
    print(f'test hook: waiting {seconds} s for the checkpoint', flush=True)
    time.sleep(float(seconds))


def _close(manager: ocp.CheckpointManager) -> None:
  """close(), after the clean-up of temporary directories that the manager starts on creation.

  orbax's close() does not wait for that clean-up thread (its save() does); after an early
  error (e.g. a bad init_from) the thread would outlive the main thread and print
  "cannot schedule new futures after interpreter shutdown" with a traceback.
  """
  await_cleanup = getattr(manager, '_maybe_await_cleanup_tmp_directory', None)  # private API
  if await_cleanup is not None:
    await_cleanup()
  manager.close()


def checkpoint_bytes(state: TrainState) -> int:
  """What one checkpoint of `state` needs on disk, before compression."""
  return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state))
