"""`--config.profile_steps=N`: a jax.profiler trace of N steps that TensorBoard's profile tab opens."""

import os

import jax


class StepProfiler:
  """Traces steps 2..N+1 of this process's run: the first step compiles, which would swamp it.

  The trace goes to workdir/profile (`tensorboard --logdir WORKDIR/profile`); process 0 only.
  """

  def __init__(self, workdir: str, num_steps: int):
    self.directory = os.path.join(workdir, 'profile')
    self.remaining = num_steps if jax.process_index() == 0 else 0
    self.seen = 0
    self.active = False

  def before_step(self) -> None:
    self.seen += 1
    if self.remaining and not self.active and self.seen == 2:
      jax.profiler.start_trace(self.directory)
      self.active = True

  def after_step(self, output: jax.Array) -> None:
    """`output`: a result of the step, waited on so that the trace holds the whole step."""
    if not self.active:
      return
    self.remaining -= 1
    if not self.remaining:
      self.stop(output)

  def stop(self, output: jax.Array | None = None) -> None:
    if self.active:
      if output is not None:
        output.block_until_ready()
      jax.profiler.stop_trace()
      self.active = False
