"""The suite's worker processes: their environment, starting them, asking them in turn.

Ours runs benchmarks/bench_jax.py in the project venv, PyTorch benchmarks/bench_torch.py in the
bench venv, once per OpenMP wait policy (TORCH_VARIANTS); protocol.Worker talks to each.
"""

import os
import sys

import protocol

HERE = os.path.dirname(os.path.abspath(__file__))


def worker_env(threads: int) -> dict[str, str]:
  """CPU only (these are the CPU columns), quiet TensorFlow/absl, PyTorch threads = cores."""
  return {**os.environ, 'JAX_PLATFORMS': 'cpu', 'TF_CPP_MIN_LOG_LEVEL': '2',
          'BENCH_THREADS': str(threads), 'PYTHONUNBUFFERED': '1'}


TORCH_VARIANTS = {  # name -> extra environment; threads = usable cores in both
    'default': {},
    # libgomp's threads spin while they wait; on cores shared with other work that spinning
    # can slow PyTorch down badly, so it also runs with passive waiting, and the faster
    # of the two is the PyTorch of record (never a ratio flattered by the load).
    'passive': {'OMP_WAIT_POLICY': 'PASSIVE'},
}


def start(label: str, torch_python: str | None, variants: list[str], logs: str,
          threads: int) -> dict[str, protocol.Worker]:
  """'ours', then one 'pytorch/<variant>' worker per variant."""
  env = worker_env(threads)
  # The dtype decides our CPU device count, which is fixed before the worker hears the model.
  ours_env = {**env, 'BENCH_DTYPE': 'bfloat16' if label.endswith(protocol.BF16) else 'float32'}
  workers = {'ours': protocol.Worker('ours', [sys.executable, os.path.join(HERE, 'bench_jax.py')],
                                     os.path.join(logs, f'{label}-ours.log'), ours_env)}
  for variant in variants if torch_python else []:
    side = f'pytorch/{variant}'
    workers[side] = protocol.Worker(
        side, [torch_python, os.path.join(HERE, 'bench_torch.py')],
        os.path.join(logs, f'{label}-pytorch-{variant}.log'), {**env, **TORCH_VARIANTS[variant]})
  return workers


def close_all(workers: dict[str, protocol.Worker]) -> None:
  for w in workers.values():
    w.close()


def in_turn(workers: dict[str, protocol.Worker], r: int) -> list[tuple[str, protocol.Worker]]:
  """Every side, in A B C order on even repeats and C B A on odd ones, so drift in the load
  hits all alike."""
  pairs = list(workers.items())
  return pairs if r % 2 == 0 else pairs[::-1]
