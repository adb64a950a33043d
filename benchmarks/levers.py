"""The speed levers of benchmarks/NOTES.md, each measured again in a fresh process.

  .venv/bin/python benchmarks/levers.py [--models resnet20] [--steps 6] [--repeats 3]

Every variant runs our step as train.py builds it (bench_jax.setup: configs/default.py, batch
128) with one thing changed: the conv backend, the CPU device count, an XLA flag, the compute
dtype, nn.scan with or without the hand-written conv backward. Each gets its own process (the device count and XLA
flags are fixed when JAX starts); the table gives train and eval img/s (median of `--repeats`
timings of `--steps` steps), the step's compile time and, last, the init compile with and
without XLA's backend optimisations and one conv's gradient in NHWC and NCHW. Read the rows of
one run against each other: the absolute rates move with the machine's load.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEVICES = '--xla_force_host_platform_device_count={}'

XLA = {'model.conv_backend': 'xla'}
# name -> (XLA_FLAGS, config overrides, what the worker patches: None, 'autodiff_scan' (lax's
# conv and autodiff inside nn.scan) or 'stored_bn' (flax's nn.BatchNorm, not models/batch_norm.py's))
VARIANTS = {
    'default (auto: oneDNN convs, 1 CPU device)': ('', {}, None),
    'XLA convs, auto: 4 CPU devices': ('', XLA, None),
    'XLA convs, 1 CPU device': (DEVICES.format(1), XLA, None),
    'XLA convs, 2 CPU devices': (DEVICES.format(2), XLA, None),
    'XLA convs, 8 CPU devices': (DEVICES.format(8), XLA, None),
    'bfloat16 compute (auto: oneDNN convs where the CPU has bf16)': ('', {'model.dtype': 'bfloat16'},
                                                                     None),
    'bfloat16 compute, XLA convs (auto: 4 devices)': ('', {**XLA, 'model.dtype': 'bfloat16'}, None),
    'XLA convs, --xla_cpu_use_onednn=true': ('--xla_cpu_use_onednn=true', XLA, None),
    'XLA convs, --xla_cpu_enable_fast_math=true': ('--xla_cpu_enable_fast_math=true', XLA, None),
    'XLA convs, --xla_cpu_use_xnnpack=false': ('--xla_cpu_use_xnnpack=false', XLA, None),
    'BatchNorm stores x - mean for its backward (oneDNN convs)': ('', {}, 'stored_bn'),
    'scan_blocks (oneDNN convs)': ('', {'model.scan_blocks': 'on'}, None),
    'scan_blocks, XLA convs, hand-written backward': ('', {**XLA, 'model.scan_blocks': 'on'}, None),
    'scan_blocks, XLA convs, autodiff backward': ('', {**XLA, 'model.scan_blocks': 'on'},
                                                  'autodiff_scan'),
}


def run_variant(model: str, overrides: dict, patch: str | None, steps: int, repeats: int,
                ) -> dict:
  """In the worker process: one variant's rates and compile time."""
  sys.path[:0] = [ROOT, HERE]
  from configs import default
  get_config = default.get_config

  from resnet_flax.training import config_help

  def patched():
    return config_help.set_fields(get_config(), overrides)
  default.get_config = patched
  from resnet_flax.models import layers
  if patch == 'autodiff_scan':
    layers.scan_conv = layers.conv  # lax's conv and autodiff inside the scan too (models/parts.py)
  elif patch == 'stored_bn':
    layers.RecomputedBatchNorm = layers.nn.BatchNorm
  import bench_jax
  import protocol
  scan = overrides.pop('model.scan_blocks', 'off') == 'on'
  info = bench_jax.setup(model + (protocol.SCAN if scan else ''), 128)
  bench_jax.train(1)
  bench_jax.evaluate(1)
  train = [bench_jax.train(steps)['seconds'] for _ in range(repeats)]
  evaluate = [bench_jax.evaluate(steps)['seconds'] for _ in range(repeats)]
  return {'devices': info['devices'], 'train': 128 * steps / statistics.median(train),
          'eval': 128 * steps / statistics.median(evaluate),
          'compile_s': info['trace_s'] + info['lower_s'] + info['compile_s']}


def run_init_and_layout(model: str) -> dict:
  """In the worker process: init compile with and without backend optimisations; one conv."""
  sys.path[:0] = [ROOT, HERE]
  import jax
  import jax.numpy as jnp
  from configs import default
  from resnet_flax.training import build
  from resnet_flax.cpu import runtime
  config = default.get_config()
  config.model.name = model
  net = build.create_model(config.model, 10, parts=runtime.model_parts(config.model))

  def init(rng):
    return net.init(rng, jnp.zeros((1, 32, 32, 3)), train=False)
  out = {}
  for name, options in (('init compile, XLA -O2 (s)', None),
                        ('init compile, backend -O0 (s)', {'xla_backend_optimization_level': 0})):
    lowered = jax.jit(init).trace(jax.random.key(0)).lower()
    start = time.perf_counter()
    lowered.compile(options) if options else lowered.compile()
    out[name] = time.perf_counter() - start

  def conv_grad_ms(x_shape, w_shape, dims):
    x, w = jnp.ones(x_shape), jnp.ones(w_shape) * 0.01

    def f(x, w):
      return jnp.sum(jax.lax.conv_general_dilated(x, w, (1, 1), 'SAME',
                                                  dimension_numbers=dims) ** 2)
    g = jax.jit(jax.grad(f, argnums=(0, 1)))
    jax.block_until_ready(g(x, w))
    times = []
    for _ in range(5):
      start = time.perf_counter()
      jax.block_until_ready(g(x, w))
      times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)
  for c, hw in ((16, 32), (64, 8)):
    out[f'{c}-ch 3x3 conv grad at {hw}x{hw}, NHWC (ms)'] = conv_grad_ms(
        (128, hw, hw, c), (3, 3, c, c), ('NHWC', 'HWIO', 'NHWC'))
    out[f'{c}-ch 3x3 conv grad at {hw}x{hw}, NCHW (ms)'] = conv_grad_ms(
        (128, c, hw, hw), (c, c, 3, 3), ('NCHW', 'OIHW', 'NCHW'))
  return out


def spawn(args: list[str], xla_flags: str = '') -> dict:
  env = {k: v for k, v in os.environ.items() if k not in ('XLA_FLAGS', 'JAX_NUM_CPU_DEVICES')}
  env.update(JAX_PLATFORMS='cpu', TF_CPP_MIN_LOG_LEVEL='2', XLA_FLAGS=xla_flags)
  proc = subprocess.run([sys.executable, __file__, *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=1800, check=False)
  lines = [line for line in proc.stdout.splitlines() if line.startswith('RESULT ')]
  if proc.returncode or not lines:
    return {'error': (proc.stderr.strip().splitlines() or ['no output'])[-1][:200]}
  return json.loads(lines[-1][len('RESULT '):])


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--models', default='resnet20')
  parser.add_argument('--steps', type=int, default=6)
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--variants', default='',
                      help='names separated by ";" (names hold commas); default: all')
  parser.add_argument('--worker', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.worker:
    job = json.loads(args.worker)
    result = (run_init_and_layout(job['model']) if job['kind'] == 'init' else
              run_variant(job['model'], job['overrides'], job['patch'], job['steps'],
                          job['repeats']))
    print('RESULT ' + json.dumps(result))
    return
  names = [n.strip() for n in args.variants.split(';')] if args.variants else list(VARIANTS)
  unknown = [n for n in names if n not in VARIANTS]
  if unknown:
    parser.error(f'unknown variant(s) {unknown}; choose from: ' + '; '.join(VARIANTS))
  print(f'load average {os.getloadavg()[0]:.1f} at start')
  for model in args.models.split(','):
    print(f'\n{model}, batch 128: img/s, median of {args.repeats} x {args.steps} steps\n')
    print('| variant | devices | train img/s | eval img/s | step compile (s) |\n'
          '|---|---|---|---|---|')
    for name in names:
      flags, overrides, patch = VARIANTS[name]
      steps = 1 if patch == 'autodiff_scan' else args.steps  # the autodiff'd scan is far slower
      r = spawn(['--worker', json.dumps({'kind': 'variant', 'model': model, 'overrides': overrides,
                                         'patch': patch, 'steps': steps,
                                         'repeats': args.repeats})], flags)
      if 'error' in r:
        print(f'| {name} | | failed: {r["error"]} | | |', flush=True)
      else:
        print(f'| {name} | {r["devices"]} | {r["train"]:.1f} | {r["eval"]:.1f} '
              f'| {r["compile_s"]:.2f} |', flush=True)
    print()
    for key, value in spawn(['--worker', json.dumps({'kind': 'init', 'model': model})]).items():
      print(f'- {key}: {value if isinstance(value, str) else f"{value:.2f}"}')
  print(f'\nload average {os.getloadavg()[0]:.1f} at end')


if __name__ == '__main__':
  main()
