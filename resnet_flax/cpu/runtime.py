"""The one entry a training run calls: `prepare(config)` before JAX starts, `.parts()` after.

`prepare` sets up the process (reports glibc's allocator, which the command line tunes:
host_memory; the CPU split into devices:
devices; JAX's compilation cache: compile_cache) and says what it did. `Runtime.parts` gives
the model its convs and BatchNorm: on the CPU backend oneDNN's convs where they apply
(cpu.backend) and the BatchNorm that recomputes `x - mean` in its backward pass, where both were
measured faster (benchmarks/NOTES.md); elsewhere the plain parts (models/parts.plain). Every
choice computes the same function with the same variables.
"""

import dataclasses

import jax
import ml_collections

from resnet_flax.training import build, layout
from resnet_flax.cpu import backend, compile_cache, devices, host_memory, onednn
from resnet_flax.models import layers, parts as parts_lib


@dataclasses.dataclass(frozen=True)
class Runtime:
  """What `prepare` did, one line each (for the run's log)."""
  host_memory: str = ''
  cpu_devices: str = ''
  compile_cache: str = ''

  def parts(self, model_cfg: ml_collections.ConfigDict,
            sharded_jit: bool = False) -> parts_lib.ModelParts:
    """The conv and BatchNorm implementations for `model_cfg` on this backend; JAX has started.

    `sharded_jit`: the step is a plain jit with the batch split over several devices (see
    backend.resolve). An explicit model.conv_backend=onednn that cannot run, or an unknown
    conv_backend or recompute_bn, is a UserError saying what to do.
    """
    return model_parts(model_cfg, sharded_jit)


def prepare(config: ml_collections.ConfigDict) -> Runtime:
  """Sets up this process for `config`; call once, before anything touches a JAX device."""
  cpu_devices = devices.configure(config)
  host_memory.one_step_at_a_time(devices.planned_count())  # where the command line tuned it
  return Runtime(host_memory=host_memory.status(),
                 cpu_devices=cpu_devices, compile_cache=compile_cache.enable(config))


def model_parts(model_cfg: ml_collections.ConfigDict,
                sharded_jit: bool = False) -> parts_lib.ModelParts:
  """`Runtime.parts` without a Runtime (tests, benchmarks): see there."""
  conv_name, conv_why = backend.resolve(model_cfg, sharded_jit=sharded_jit)
  recompute = build.recompute_bn(model_cfg.get('recompute_bn', 'auto'))
  norm_why = 'model.recompute_bn'
  if recompute is None:  # auto: where it was measured faster
    recompute = jax.default_backend() == 'cpu'
    norm_why = f'auto on {jax.default_backend()}'
  blocks = layout.block_layout(model_cfg)
  plain = parts_lib.plain(blocks.scan, recompute, build.unbiased_running_var(model_cfg))
  conv = plain.conv
  if conv_name == 'onednn':
    conv = layers.conv_computed_by(onednn.conv_general_dilated)
  elif blocks.scan:
    conv_why += '; hand-written backward in scanned stages'
  norm = ('recomputed' if recompute else
          'autodiff' if build.unbiased_running_var(model_cfg) else 'flax')
  return parts_lib.ModelParts(conv, plain.norm,
                              f'{conv_name} convolutions ({conv_why}), {norm} BatchNorm '
                              f'({norm_why}), {blocks.why}')
