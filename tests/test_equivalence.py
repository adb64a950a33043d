"""jit, pmap and per-device BN on 4 devices take the steps of one device: exactly so, up to
float64 rounding, over many steps (tests/equivalence_worker.py, in a subprocess with 4 fake CPU
devices and jax_enable_x64).

In float32 the same runs agree to rounding for the first steps only: training amplifies the
different summation orders of 1 and 4 devices. The float64 run shows that the drift is that
rounding and nothing else; the worker run with `float32` prints its size.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 24


@pytest.mark.slow
def test_four_devices_match_one_device_in_float64_over_many_steps():
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=4', JAX_PLATFORMS='cpu')
  proc = subprocess.run([sys.executable, os.path.join(ROOT, 'tests', 'equivalence_worker.py'),
                         'float64', str(STEPS)], env=env, cwd=ROOT, capture_output=True,
                        text=True, timeout=900)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  result = json.loads(proc.stdout.split('RESULT ', 1)[1])
  assert result['loss_dtype'] == 'float64'
  for mode in ('jit-global', 'pmap-global', 'jit-per_device', 'pmap-per_device'):
    assert len(result[mode]['loss_rel']) == STEPS
    assert max(result[mode]['loss_rel']) < 1e-12, (mode, result[mode]['loss_rel'])
    assert result[mode]['params_rel'] < 1e-12, (mode, result[mode]['params_rel'])
  refs = result['reference_losses']  # per-device BN is another function than global BN
  assert max(abs(a - b) for a, b in zip(refs['global'], refs['per_device'])) > 1e-3
