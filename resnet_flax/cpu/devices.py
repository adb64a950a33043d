"""How many XLA devices the host CPU is split into: `config.parallel.cpu_devices`.

Why: XLA:CPU runs one device's step on few threads at a time; several devices sharding the batch
keep every core busy. With global BatchNorm that is the same function as one device, so the
split changes only where the work runs. GPU and TPU runs are unaffected: this only shapes the
CPU backend.
"""

import os
import re

import jax
import ml_collections

from resnet_flax.cpu import backend
from resnet_flax.errors import UserError

AUTO_CPU_DEVICES = (4, 2)  # tried in order by cpu_devices=0; see benchmarks/NOTES.md


def configure(config: ml_collections.ConfigDict) -> str:
  """Splits the host CPU into `config.parallel.cpu_devices` XLA devices; says why that many.

  0 (auto) picks the first count in AUTO_CPU_DEVICES that divides both batch sizes, unless the
  user already chose (XLA_FLAGS --xla_force_host_platform_device_count or JAX_NUM_CPU_DEVICES /
  jax_num_cpu_devices), the run is multi-process, BN is per device (the count would change the
  model), or JAX already started (then what is there is used). Auto keeps one device where the
  convs will run on oneDNN (cpu.backend): its threads use every core already. Must run before
  anything touches a device.
  """
  cfg, wanted = config.parallel, config.parallel.cpu_devices
  if wanted < 0:
    raise UserError(f'--config.parallel.cpu_devices={wanted}: use 0 (auto) or a device count.')
  if wanted:
    if not _set_cpu_devices(wanted) and len(jax.devices('cpu')) != wanted:
      raise UserError(
          f'--config.parallel.cpu_devices={wanted}, but JAX already started with '
          f'{len(jax.devices("cpu"))} CPU device(s) in this process. Set it before anything '
          'runs on a device (train.py does), or use --config.parallel.cpu_devices=0 to keep them.')
    return f'parallel.cpu_devices={wanted}'
  if (jax.config.jax_num_cpu_devices >= 0
      or 'xla_force_host_platform_device_count' in os.environ.get('XLA_FLAGS', '')):
    return 'as already chosen by XLA_FLAGS or jax_num_cpu_devices'
  if cfg.distributed or cfg.coordinator_address or cfg.batch_norm != 'global':
    return 'auto: one a process when multi-process or with per-device BatchNorm'
  if backend.onednn_wanted(config.model):
    if _set_cpu_devices(1):
      return "auto: one, as oneDNN's convolutions use every core"
    return 'as JAX had already started (parallel.cpu_devices=0)'
  for n in AUTO_CPU_DEVICES:
    if config.batch_size % n == 0 and config.eval_batch_size % n == 0:
      if _set_cpu_devices(n):
        return 'parallel.cpu_devices=0: auto'
      return 'as JAX had already started (parallel.cpu_devices=0)'
  return 'auto: no count in AUTO_CPU_DEVICES divides the batch sizes'


def _set_cpu_devices(n: int) -> bool:
  """jax_num_cpu_devices = n; False where JAX has started and keeps its devices."""
  try:
    jax.config.update('jax_num_cpu_devices', n)
  except RuntimeError:  # backends already initialised (the only public way to ask)
    return False
  return True


def planned_count() -> int:
  """How many CPU devices JAX will start with, judged without starting it: jax_num_cpu_devices
  (as `configure` sets it), else XLA_FLAGS' --xla_force_host_platform_device_count, else one."""
  if jax.config.jax_num_cpu_devices > 0:
    return jax.config.jax_num_cpu_devices
  match = re.search(r'--xla_force_host_platform_device_count=(\d+)', os.environ.get('XLA_FLAGS', ''))
  return int(match.group(1)) if match else 1
