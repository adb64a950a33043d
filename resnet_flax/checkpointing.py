"""Orbax checkpoints of the TrainState plus a JSON record (epoch, config) beside it."""

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from resnet_flax.train_state import TrainState


class Checkpointer:
  """Saves `{state, meta}` under workdir/checkpoints/<step>; restores the newest."""

  def __init__(self, workdir: str, keep: int):
    self.directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
    self._manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, state: TrainState, meta: dict[str, Any]) -> None:
    """Starts an asynchronous save at `state.step` (training goes on while it writes)."""
    self._manager.save(int(state.step), args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))

  def restore(self, target: TrainState) -> tuple[TrainState, dict[str, Any]]:
    """Restores the newest checkpoint onto `target`'s structure, shapes and shardings."""
    step = self._manager.latest_step()
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
    return restored.state, restored.meta

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()
