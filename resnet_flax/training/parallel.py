"""How the train step runs on many devices and hosts: jit over a mesh (default) or pmap.

One step function (steps.train_step) underneath every mode:
  jit,  global BN      jax.jit; batch sharded over the ('data',) mesh, state replicated; XLA
                       inserts the collectives (BN statistics over the global batch).
  jit,  per-device BN  jax.jit of jax.shard_map: the step sees its device's share and averages
                       gradients, metrics and BN running statistics over the 'data' axis.
  pmap, either BN      jax.pmap over the local devices with the 'data' axis; global BN passes
                       the axis to BatchNorm.
The trainer keeps one canonical state (replicated over the mesh) for evaluation and
checkpoints; `DataParallel` converts to and from what the step wants.
"""

from typing import Any, Callable

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from resnet_flax.errors import UserError

AXIS = 'data'
MODES = ('jit', 'pmap')
BATCH_NORMS = ('global', 'per_device')
TRANSFER_GUARDS = ('allow', 'log', 'disallow')


def check_config(cfg: ml_collections.ConfigDict) -> None:
  for field, valid in (('mode', MODES), ('batch_norm', BATCH_NORMS),
                       ('transfer_guard', TRANSFER_GUARDS)):
    if cfg[field] not in valid:
      raise UserError(f'Unknown --config.parallel.{field}={cfg[field]!r}: use one of '
                      f'{", ".join(map(repr, valid))}.')


def initialize_distributed(cfg: ml_collections.ConfigDict) -> None:
  """jax.distributed.initialize when `cfg` asks for several processes; idempotent.

  Must run before anything touches a JAX device.
  """
  if not (cfg.distributed or cfg.coordinator_address) or jax.distributed.is_initialized():
    return
  try:
    jax.distributed.initialize(coordinator_address=cfg.coordinator_address or None,
                               num_processes=cfg.num_processes or None,
                               process_id=None if cfg.process_id < 0 else cfg.process_id)
  except (RuntimeError, ValueError) as e:
    raise UserError(
        f'Multi-host start failed ({type(e).__name__}: {str(e)[:300]}). Give every process the '
        'same --config.parallel.coordinator_address=HOST:PORT (process 0\'s address and a free '
        'port) and --config.parallel.num_processes, and each its own '
        '--config.parallel.process_id; or launch under SLURM/Open MPI, whose variables JAX '
        'reads; or set --config.parallel.distributed=False for one process.') from e


def step_axis_name(cfg: ml_collections.ConfigDict) -> str | None:
  """The named axis the step runs under (pmap or shard_map), None under plain jit."""
  return AXIS if cfg.mode == 'pmap' or cfg.batch_norm == 'per_device' else None


def sharded_jit(cfg: ml_collections.ConfigDict) -> bool:
  """Whether the step is a plain jit over several devices (XLA splits it, custom calls too)."""
  return step_axis_name(cfg) is None and jax.device_count() > 1


def bn_axis_name(cfg: ml_collections.ConfigDict) -> str | None:
  """BatchNorm's cross-device axis: only pmap needs it told (jit's BN is global by itself)."""
  return AXIS if cfg.mode == 'pmap' and cfg.batch_norm == 'global' else None


def sam_mode(config: ml_collections.ConfigDict) -> str | None:
  """SAM's perturbation follows the BN mode: per-device statistics, per-device ascent."""
  if not config.optim.sam_rho:
    return None
  return 'per_device' if config.parallel.batch_norm == 'per_device' else 'global'


def data_mesh() -> Mesh:
  """All devices in one 'data' axis, grouped by process: process p holds the p-th slice of
  every global batch, which is what the input pipeline yields."""
  devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
  return Mesh(np.array(devices), (AXIS,))


class DataParallel:
  """A compiled train step and the conversions its mode needs."""

  def __init__(self, cfg: ml_collections.ConfigDict, mesh: Mesh, step_fn: Callable[..., Any],
               batch_sharded: bool = True):
    """`step_fn(state, batch, rng, axis_name=...)` is steps.train_step with its options bound.

    `batch_sharded=False`: the step's second input is replicated (data on the device, see
    data.on_device.feeding), not a batch split over the devices.
    """
    check_config(cfg)
    self.mode, self.guard = cfg.mode, cfg.transfer_guard
    self.replicated = NamedSharding(mesh, P())
    self.sharded = NamedSharding(mesh, P(AXIS))
    axis = step_axis_name(cfg)
    self.key_impl = jax.random.key_impl(jax.random.key(0))

    def step(state, batch, key_data):  # raw key data: pmap cannot take global typed keys
      rng = jax.random.wrap_key_data(key_data, impl=self.key_impl)
      return step_fn(state, batch, rng, axis_name=axis)
    if cfg.mode == 'pmap':
      self._step = jax.pmap(step, axis_name=AXIS, donate_argnums=0)
    elif axis:
      # check_vma=False: with it, the gradient of the replicated params would come back
      # already summed over devices (the transpose of the implicit pvary); the step averages
      # explicitly, exactly as under pmap.
      batch_spec = P(AXIS) if batch_sharded else P()
      self._step = jax.jit(jax.shard_map(step, mesh=mesh, in_specs=(P(), batch_spec, P()),
                                         out_specs=(P(), P()), check_vma=False),
                           donate_argnums=0)
    else:
      self._step = jax.jit(step, donate_argnums=0)

  def put_state(self, state: Any) -> Any:
    """The canonical state (or any tree replicated over the mesh) in the form the step takes."""
    if self.mode != 'pmap':
      return state
    return jax.tree.map(lambda x: self._stack(_local_value(x)), state)

  def get_state(self, state: Any) -> Any:
    """The canonical state back from the step's form (every device holds the same values)."""
    if self.mode != 'pmap':
      return state
    return jax.tree.map(lambda x: self.replicate(_local_value(x)[0]), state)

  def replicate(self, value: Any) -> jax.Array:
    """A host value (the same in every process) as an array replicated over the mesh."""
    value = np.asarray(value)
    return jax.make_array_from_process_local_data(self.replicated, value, value.shape)

  def _stack(self, value: np.ndarray) -> jax.Array:
    """Under pmap: `value` copied to every device, as one global array with a device axis.

    Global arrays, not host-local ones: pmap would re-wrap host-local inputs in every
    multi-process step, a transfer that the transfer guard rightly refuses.
    """
    n = jax.local_device_count()
    return jax.make_array_from_process_local_data(self.sharded,
                                                  np.broadcast_to(value, (n, *value.shape)))

  def put_batch(self, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """This process's slice of the global batch as the step's input (an explicit transfer)."""
    if self.mode == 'pmap':
      n = jax.local_device_count()
      return {k: jax.make_array_from_process_local_data(
          self.sharded, v.reshape(n, v.shape[0] // n, *v.shape[1:])) for k, v in batch.items()}
    return {k: jax.make_array_from_process_local_data(self.sharded, v) for k, v in batch.items()}

  def put_data(self, data: Any) -> Any:
    """Replicated on-device data (placed with `self.replicated`) in the step's form."""
    return self.put_state(data)  # the same conversion as any replicated tree

  def step(self, state: Any, batch: Any,
           rng: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
    """One step; implicit host<->device copies inside it are errors (transfer_guard)."""
    with jax.transfer_guard(self.guard):
      return self._step(state, batch, rng)

  def put_rng(self, rng: jax.Array) -> jax.Array:
    """The dropout key's data where the step wants it: replicated (a copy per device under pmap)."""
    if jax.random.key_impl(rng) != self.key_impl:
      raise ValueError(f'expected a {self.key_impl} key')
    data = np.asarray(jax.random.key_data(rng))
    return self._stack(data) if self.mode == 'pmap' else self.replicate(data)


def _local_value(x: jax.Array) -> np.ndarray:
  """The value of a replicated array (or, under pmap, the stack of its per-device copies)."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    return np.asarray(x.addressable_data(0))
  return np.asarray(x)


def fetch_metrics(metrics: list[dict[str, Any]]) -> list[dict[str, float]]:
  """Per-step metrics as Python floats (float32 values survive a JSON round trip exactly).

  A pmap step returns one equal (averaged) copy per device; the first local one is read.
  """
  def first(x):
    if isinstance(x, jax.Array) and x.ndim:
      x = x.addressable_data(0)
    return x
  local = jax.device_get(jax.tree.map(first, metrics))
  return [{k: float(np.asarray(v).reshape(-1)[0]) for k, v in m.items()} for m in local]
