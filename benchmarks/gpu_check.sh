#!/usr/bin/env bash
# GPU check: one prepared command (under 8 minutes) for a machine with one NVIDIA GPU.
#
#   bash benchmarks/gpu_check.sh            # from the repository root
#
# 1. Python: with PyPI reachable, a venv .venv-gpu with this package and the CUDA extra at the
#    locked versions (pip install -e ".[cuda12,test]" -c requirements.txt). Without it (the lent
#    GPU machines here reach no registry), the machine's own python3 and its preinstalled
#    CUDA jax, flax, optax, orbax-checkpoint, tensorboard, pytest (versions not the lock's: printed
#    below); what it lacks (ml-collections at least) travels as wheels in .whl/, made beforehand
#    where pip works:
#      pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl ml-collections==1.1.0
#    and is installed with --no-index into /tmp/gpu-site.
# 2. Prints jax.devices(); stops (exit 3) unless JAX's default backend is a GPU.
# 3. Tests that run the compiled step on the default backend (timeout 240 s): tests/test_train.py,
#    tests/test_checkpointing.py (save, resume, kill/SIGTERM and resume), tests/test_batches.py (the
#    on-device batch builder against the host one), and of tests/test_parallel.py those on the
#    default device (transfer guard, non-finite stop, EMA, SAM, every optimizer and schedule).
#    Left out: tests/test_pinned_losses.py pins CPU losses to the last digit (GPU convolutions and
#    reductions differ in rounding), the rest of tests/test_parallel.py splits the CPU into
#    devices, and the oneDNN tests are CPU-only. Assertions of bit-identical resumption may fail
#    on a GPU (non-deterministic reductions): such a failure is reported, not hidden.
# 4. The GPU column: benchmarks/gpu_bench.py, train img/s in float32 and bfloat16 (timeout 240 s),
#    writes benchmarks/results-gpu.md and .json (and copies them, and the logs, to $OUT if set).
# Exit status: 0 when the tests passed and the bench wrote its table, else the first failure's.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2 WANDB_MODE=offline
LOGS=${OUT:-/tmp/gpu-check}
mkdir -p "$LOGS"
status=0

if python3 -c "import socket; socket.create_connection(('pypi.org', 443), timeout=5)" 2>/dev/null; then
  echo "== PyPI reachable: .venv-gpu with .[cuda12,test] at the locked versions"
  test -x .venv-gpu/bin/python || python3 -m venv .venv-gpu
  .venv-gpu/bin/python -m pip install -q -e ".[cuda12,test]" -c requirements.txt || exit 4
  PY=.venv-gpu/bin/python
else
  echo "== No PyPI: the machine's python3 and its preinstalled CUDA jax; .whl/ for what it lacks"
  PY=python3
  if compgen -G ".whl/*.whl" >/dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/gpu-site .whl/*.whl || exit 4
    export PYTHONPATH=/tmp/gpu-site:.
  else
    export PYTHONPATH=.
  fi
fi
$PY - <<'PY' || exit 3
import importlib.metadata as md, jax
print('jax.devices():', jax.devices())
for name in ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'ml-collections', 'tensorboard'):
  try:
    print(f'  {name} {md.version(name)}')
  except md.PackageNotFoundError:
    print(f'  {name} MISSING')
assert jax.default_backend() == 'gpu', f'default backend is {jax.default_backend()}, not a GPU'
PY

echo "== tests on the GPU (timeout 240 s)"
timeout 240 $PY -m pytest -q -m "not slow" -p no:cacheprovider \
  tests/test_train.py tests/test_checkpointing.py tests/test_batches.py \
  tests/test_parallel.py::test_transfer_guard_refuses_implicit_copies_in_the_step \
  tests/test_parallel.py::test_non_finite_loss_stops_at_its_step_and_keeps_the_last_good_checkpoint \
  tests/test_parallel.py::test_ema_follows_its_formula_and_is_what_evaluation_uses \
  tests/test_parallel.py::test_sam_takes_the_gradient_at_the_ascended_point \
  tests/test_parallel.py::test_every_optimizer_and_schedule_lowers_the_loss_on_a_fixed_batch \
  2>&1 | tee "$LOGS/gpu-tests.log"
rc=$?; [ $rc -ne 0 ] && status=$rc && echo "tests: exit $rc (see $LOGS/gpu-tests.log)"

echo "== the GPU column (timeout 240 s)"
timeout 240 $PY benchmarks/gpu_bench.py --out benchmarks/results-gpu.md 2>&1 | tee "$LOGS/gpu-bench.log"
rc=$?; [ $rc -ne 0 ] && [ $status -eq 0 ] && status=$rc && echo "bench: exit $rc"
if [ -n "${OUT:-}" ]; then cp benchmarks/results-gpu.md benchmarks/results-gpu.json "$OUT"/ 2>/dev/null; fi
exit $status
