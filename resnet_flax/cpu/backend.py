"""Which kernels run the convolutions: `config.model.conv_backend` ('auto', 'xla', 'onednn').

'auto' takes oneDNN's (cpu.onednn) where they apply and are faster: the CPU backend, one device,
float32 compute, or bfloat16 on a CPU with bfloat16 arithmetic (AMX or AVX512-BF16; elsewhere
oneDNN would emulate it). On one device oneDNN's threads use every core; several CPU devices
would each start their own (and a custom call in a sharded jit is not split by XLA, it
gathers the batch), so there XLA's convs are used. Either backend computes the same function
up to float rounding, and the parameters are the same, so a run may switch on resume.

Under 'auto', an op that fails to build or load costs a warning line, not the run: XLA's convs
are used. An explicit 'onednn' that cannot run is an error.
"""

import logging

import jax
import ml_collections

from resnet_flax.errors import UserError
from resnet_flax.cpu import onednn

BACKENDS = ('auto', 'xla', 'onednn')


def _check_name(requested: str) -> None:
  if requested not in BACKENDS:
    raise UserError(f'--config.model.conv_backend={requested!r} is not a conv backend: use '
                    f"'auto' (oneDNN on one CPU device, else XLA), 'xla' or 'onednn'.")


def onednn_wanted(model_cfg: ml_collections.ConfigDict) -> bool:
  """Whether a CPU run of this model would take oneDNN: used to split the CPU (or not) before
  JAX starts, so it cannot look at the devices."""
  requested = model_cfg.get('conv_backend', 'auto')
  _check_name(requested)
  return (requested == 'onednn' or requested == 'auto' and
          onednn.dtype_problem(model_cfg.dtype) is None and onednn.unavailable() is None)


def _why_not_onednn(model_cfg: ml_collections.ConfigDict, sharded_jit: bool) -> str | None:
  if jax.default_backend() != 'cpu':
    return f'oneDNN is for the CPU and this run is on {jax.default_backend()}'
  problem = onednn.dtype_problem(model_cfg.dtype)
  if problem:
    return f'model.dtype is {model_cfg.dtype}: {problem}'
  if sharded_jit:
    return (f'{jax.device_count()} devices share the batch under jit, which would gather it '
            'for every oneDNN call')
  return onednn.unavailable()


def resolve(model_cfg: ml_collections.ConfigDict, sharded_jit: bool = False) -> tuple[str, str]:
  """('xla' or 'onednn', why) for `model_cfg.conv_backend`; JAX must have started.

  `sharded_jit`: the step runs under jit with the batch split over several devices (parallel
  mode 'jit', global BN); pmap and shard_map steps see one device's share and are fine.
  An explicit 'onednn' that cannot run is a UserError saying why.
  """
  requested = model_cfg.get('conv_backend', 'auto')
  _check_name(requested)
  if requested == 'xla':
    return 'xla', 'model.conv_backend=xla'
  if requested == 'auto' and jax.device_count() > 1:
    return 'xla', f'auto: {jax.device_count()} devices, oneDNN is used on one'
  reason = _why_not_onednn(model_cfg, sharded_jit)
  if requested == 'onednn' and reason:
    raise UserError(f'--config.model.conv_backend=onednn cannot be used: {reason}. Use '
                    "--config.model.conv_backend=auto to take it only where it applies, or 'xla'.")
  if reason:
    return 'xla', f'auto: {reason}'
  try:
    version = onednn.load()  # builds the op now, so a broken toolchain fails before training
  except UserError as e:
    if requested == 'onednn':
      raise
    why = str(e).split('\n', 1)[0]
    logging.getLogger('resnet_flax').warning("XLA's convolutions are used, not oneDNN's: %s", why)
    return 'xla', f'auto: the oneDNN op is unavailable ({why.split(". ")[0]})'
  return 'onednn', f'oneDNN {version}, {"auto" if requested == "auto" else "model.conv_backend"}'
