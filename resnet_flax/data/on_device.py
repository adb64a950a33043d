"""Whether the training split lives on the device, and placing it there once.

On the device (`DeviceData`), each step indexes its batch inside the compiled step: no
per-step host-to-device copy. batches.py builds the batch from either source alike.
"""

import os
from collections.abc import Sequence

import jax
import numpy as np

from resnet_flax.data.batches import DeviceData
from resnet_flax.data.dataset import Dataset
from resnet_flax.errors import UserError

# fits_on_device: the share of a device's free memory (host RAM for CPU devices) that the
# uint8 copies may take; the rest is left for the model, activations and the host pipeline.
FIT_FRACTION = 0.25


def put_on_device(ds: Dataset, sharding: jax.sharding.Sharding) -> DeviceData:
  """Copies `ds.train` (uint8 images, int32 labels) to the devices of a replicated `sharding`.

  Every device holds the whole split; with several processes each passes the same data.
  """
  if not sharding.is_fully_replicated:
    raise ValueError(f'the training data is replicated; got {sharding}')

  def put(x):
    x = np.asarray(x)
    return jax.make_array_from_process_local_data(sharding, x, x.shape)

  return DeviceData(put(ds.train.images), put(ds.train.labels.astype(np.int32)))


def fits_on_device(ds: Dataset, devices: Sequence[jax.Device]) -> bool:
  """Whether the uint8 training split should go on `devices` (config 'auto').

  Each device holds a copy of the images and labels. Accelerators: the copy must take at
  most FIT_FRACTION of every device's free memory (memory_stats' bytes_limit - bytes_in_use).
  CPU devices share the host's RAM: all their copies must take at most FIT_FRACTION of the
  available RAM (MemAvailable). Without memory figures the answer is False (host pipeline).
  """
  need = ds.train.images.nbytes + ds.train.labels.nbytes
  cpus = [d for d in devices if d.platform == 'cpu']
  if cpus:
    available = _available_host_ram()
    if available is None or len(cpus) * need > FIT_FRACTION * available:
      return False
  for device in devices:
    if device.platform == 'cpu':
      continue
    stats = device.memory_stats() or {}
    if 'bytes_limit' not in stats:
      return False
    if need > FIT_FRACTION * (stats['bytes_limit'] - stats.get('bytes_in_use', 0)):
      return False
  return True


def _available_host_ram() -> int | None:
  try:
    with open('/proc/meminfo') as f:
      for line in f:
        if line.startswith('MemAvailable:'):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  try:
    return os.sysconf('SC_AVPHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
  except (ValueError, OSError, AttributeError):
    return None


ON_DEVICE_SETTINGS = ('auto', 'on', 'off')


def wanted(setting: str, ds: Dataset, devices: Sequence[jax.Device]) -> bool:
  """Resolves config.data.on_device: 'auto' places the data when it fits (fits_on_device)."""
  if setting not in ON_DEVICE_SETTINGS:
    raise UserError(f'--config.data.on_device={setting!r}: use one of '
                    f'{", ".join(map(repr, ON_DEVICE_SETTINGS))}.')
  return setting == 'on' or (setting == 'auto' and fits_on_device(ds, devices))
