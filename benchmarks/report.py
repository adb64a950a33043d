"""The suite's report: medians and ratios from the raw numbers, issue 8's goals, the Markdown.

render(results) is a pure function of the suite's results (the .json beside the report), so a
report can be written again from a saved run.
"""

import dataclasses
import os
import statistics
import tempfile
from typing import Any

import protocol
import startup

GPU_NOTE = 'not measured: no GPU in this run'


def median(xs: list[float]) -> float:
  return statistics.median(xs) if xs else float('nan')


# Scripts whose own report the suite embeds: (script, section title, flags for --quick, whichever
# the script accepts).
EMBEDDED = (
    ('input_pipeline', 'Input pipeline',
     {'--repeats': '1', '--steps': '1', '--host-batches': '10', '--num-train': '2048'}),
    ('augment_cost', 'Augmentation policies: ResNet-20 train step and batch builder',
     {'--repeats': '1', '--steps': '1'}),
    ('depth', 'Depth: ResNet-20 to ResNet-1202, compile, train img/s and peak memory',
     {'--runs': 'resnet20:32,resnet1202:8', '--steps': '1',
      '--out': os.path.join(tempfile.gettempdir(), 'depth_quick.md')}),
)



def summarize(results: dict[str, Any]) -> dict[str, Any]:
  """Medians, ratios and FLOP rates from the raw numbers."""
  peak = median(results['matmul']['gflops']['ours'])
  models = {}
  for name, m in results['models'].items():
    ours = m['setup']['ours']
    s = {'params': ours['params'], 'macs': ours['macs']}
    for kind in ('train', 'eval'):
      s[f'{kind}_ours'] = median(m[f'{kind}_ips']['ours'])
      theirs = {side.split('/')[1]: median(v) for side, v in m[f'{kind}_ips'].items()
                if side.startswith('pytorch/')}
      if theirs:
        best = max(theirs, key=theirs.get)
        s[f'{kind}_pytorch_variants'] = theirs
        s[f'{kind}_pytorch'], s[f'{kind}_pytorch_best'] = theirs[best], best
        s[f'{kind}_ratio'] = s[f'{kind}_ours'] / theirs[best]
    phases = m['compile_phases']
    for key in ('trace_s', 'lower_s', 'compile_s'):
      s[key] = median([p[key] for p in phases])
    s['compile_total_s'] = median([p['trace_s'] + p['lower_s'] + p['compile_s'] for p in phases])
    s['compile_samples'] = len(phases)
    s['init_s'], s['eval_compile_s'] = ours['init_s'], ours['eval_compile_s']
    flops_per_image = 6 * ours['macs']  # forward MACs x 2 FLOPs x 3 (forward + two backward)
    s['gflops_ours'] = s['train_ours'] * flops_per_image / 1e9
    s['xla_gflops_ours'] = s['train_ours'] * ours['xla_flops'] / m['batch'] / 1e9
    s['peak_gflops'] = median(m['matmul_gflops']) if m.get('matmul_gflops') else peak
    s['peak_fraction'] = s['gflops_ours'] / s['peak_gflops']
    if 'train_pytorch' in s:
      s['gflops_pytorch'] = s['train_pytorch'] * flops_per_image / 1e9
    models[name] = s
  start = {kind: {'first_step_s': median([r['first_step_s'] for r in runs]),
                  'summary_s': median([r['summary_s'] for r in runs if r.get('summary_s')]),
                  'rss_gib': max(r['rss_gib'] for r in runs), 'runs': len(runs),
                  'max_steps': max(r['steps'] for r in runs)}
           for kind, runs in results.get('train_py', {}).items() if runs}
  theirs = [median(v) for side, v in results['matmul']['gflops'].items() if side != 'ours']
  return {'peak_gflops': peak, 'peak_gflops_pytorch': max(theirs, default=float('nan')),
          'models': models, 'start': start}


@dataclasses.dataclass
class Goal:
  goal: str
  target: str
  measured: str
  met: bool | None  # None: not measured in this run


def goals(summary: dict[str, Any]) -> list[Goal]:
  """Issue 8's goals, each as measured (ratios on this machine, same run)."""
  m, start = summary['models'], summary['start']
  out = []
  for name in ('resnet20', 'resnet110'):
    ratio = m.get(name, {}).get('train_ratio')
    out.append(Goal(f'{name} train img/s vs PyTorch', '>= 1.0x',
                    f'{ratio:.2f}x' if ratio else 'not measured', ratio >= 1.0 if ratio else None))
  frac = m.get('resnet20', {}).get('peak_fraction')
  out.append(Goal('resnet20 step FLOP rate vs f32 matmul peak', '>= 60%',
                  f'{frac:.0%} ({m["resnet20"]["gflops_ours"]:.0f} of '
                  f'{m["resnet20"]["peak_gflops"]:.0f} '
                  'GFLOP/s)' if frac else 'not measured', frac >= 0.6 if frac else None))
  for suffix, how in (('', 'default, unrolled'), (protocol.SCAN, 'model.scan_blocks')):
    deep, shallow = m.get('resnet110' + suffix), m.get('resnet20')  # vs the default ResNet-20
    ratio = deep['compile_total_s'] / shallow['compile_total_s'] if deep and shallow else None
    out.append(Goal(f'resnet110 compile time vs resnet20 ({how})', '<= 1.5x',
                    f'{ratio:.2f}x ({deep["compile_total_s"]:.1f} s vs '
                    f'{shallow["compile_total_s"]:.1f} s)' if ratio else 'not measured',
                    ratio <= 1.5 if ratio else None))
  run = start.get('cifar10_files')
  warm = start.get('cifar10_files_warm')
  out.append(Goal('train.py start to first step, resnet20, CIFAR-10-sized', '<= 20 s',
                  (f'{run["first_step_s"]:.1f} s (cold cache)' if run else 'not measured')
                  + (f', {warm["first_step_s"]:.1f} s (warm)' if warm else ''),
                  run['first_step_s'] <= 20 if run else None))
  out.append(Goal('peak RSS, resnet20, CIFAR-10-sized training', '<= 3 GiB',
                  f'{run["rss_gib"]:.2f} GiB' if run else 'not measured',
                  run['rss_gib'] <= 3 if run else None))
  return out


def _f(x: float | None, digits: int = 1) -> str:
  return '–' if x is None or x != x else f'{x:,.{digits}f}'


def render(results: dict[str, Any]) -> str:
  """The Markdown report: machine, goals, per-model table, start-up and memory, notes."""
  s, mach, plan = summarize(results), results['machine'], results['plan']
  v = results['matmul']['versions']
  torch_info = next((info for side, info in v.items() if side.startswith('pytorch/')), {})
  torch_v = torch_info.get('torch', 'absent')
  variants = [side.split('/')[1] for side in v if side.startswith('pytorch/')]
  lines = [
      '# Benchmarks: resnet_flax vs PyTorch on this CPU', '',
      f'Generated {results["date"]} by `{results["command"]}` '
      f'({results.get("minutes", 0):.0f} min)'
      + (' (**--quick: a smoke run, not figures of record**)' if results['quick'] else '') + '.', '',
      '## Machine', '',
      f'- CPU: {mach["cpu"]} ({mach.get("vectors", "vector unit not recorded")}), '
      f'{mach["cores"]} cores usable '
      f'({mach["cpu_count"]} online), {mach["ram_gib"]:.1f} GiB RAM, Linux {mach["kernel"]}',
      f'- Python {v["ours"]["python"]}; jax {v["ours"]["jax"]}, jaxlib {v["ours"]["jaxlib"]}, '
      f'flax {v["ours"]["flax"]} ({v["ours"]["devices"]} {v["ours"]["backend"]} device(s)); '
      f'torch {torch_v} ({torch_info.get("threads", "–")} threads)',
      f'- Our convolutions: {v["ours"].get("convolutions", "not recorded")}',
      f'- XLA_FLAGS: `{mach["xla_flags"] or "(unset)"}`; commit {mach["commit"]}',
      f'- Load average (1 min) {mach["load_start"][0]:.1f} at start, {mach["load_end"][0]:.1f} at '
      f'end: other work shared the cores, so read the ratios, not the absolute rates.', '',
      '## Goals (issue 8)', '',
      '| goal | target | measured | status |', '|---|---|---|---|',
      *(f'| {g.goal} | {g.target} | {g.measured} | '
        f'{"not measured" if g.met is None else "met" if g.met else "**not met**"} |'
        for g in goals(s)), '',
      f'## Training and evaluation step (batch {results["batch"]}, float32, 32x32x3)', '',
      f'Images per second, median of {plan["repeats"]} interleaved repeats per side after '
      f'{plan.get("warmup_rounds", 1)} warm-up round(s) of {plan["warmup_steps"]} train and '
      f'{plan["warmup_steps"]} eval steps; ratio = ours / PyTorch. GFLOP/s = 6 x forward MACs '
      f'per image x img/s (model FLOPs); % of peak: of the jnp f32 matmul peak timed between that '
      f'model\'s repeats (below). PyTorch: '
      f'the faster of its runs ({", ".join(variants) or "none"}; see below).', '',
      '| model | params | train ours | train PyTorch | ratio | eval ours | eval PyTorch | ratio '
      '| ours GFLOP/s (% of peak) | PyTorch GFLOP/s | GPU train img/s |',
      '|---|---|---|---|---|---|---|---|---|---|---|']
  for name, m in s['models'].items():
    lines.append(
        f'| {name} | {m["params"]:,} | {_f(m["train_ours"])} | {_f(m.get("train_pytorch"))} '
        f'| {_f(m.get("train_ratio"), 2)} | {_f(m["eval_ours"])} | {_f(m.get("eval_pytorch"))} '
        f'| {_f(m.get("eval_ratio"), 2)} | {_f(m["gflops_ours"])} ({m["peak_fraction"]:.0%}) '
        f'| {_f(m.get("gflops_pytorch"))} | |')
  lines += ['', f'GPU column: {GPU_NOTE}.', '']
  if results.get('torch_missing'):
    lines += [f'PyTorch side skipped: {results["torch_missing"]}.', '']
  if variants:
    lines += ['PyTorch img/s by OpenMP wait policy (`default`: libgomp spins while waiting; '
              '`passive`: OMP_WAIT_POLICY=PASSIVE), threads = usable cores in both:', '',
              '| model | ' + ' | '.join(f'train {x} | eval {x}' for x in variants) + ' |',
              '|---|' + '---|---|' * len(variants)]
    for name, m in s['models'].items():
      cells = [f'{_f(m["train_pytorch_variants"][x])} | {_f(m["eval_pytorch_variants"][x])}'
               for x in variants]
      lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    lines.append('')
  lines += [
      '## Compile time (ours)', '',
      'Init: the jitted `model.init` + optimizer state (compile and run). Trace, lower and XLA '
      'compile of the train step through `parallel.DataParallel`, as train.py runs it; median of '
      'the samples (the first in a fresh process, the others recompiling from scratch). XLA '
      'GFLOP/s: the same step rate counted with XLA\'s cost analysis of the compiled step, which '
      'leaves out custom calls: with oneDNN\'s convolutions it counts only the rest of the step.',
      '',
      '| model | init (s) | trace (s) | lower (s) | XLA compile (s) | step total (s) | samples '
      '| eval step compile (s) | MACs/image | XLA GFLOP/s |',
      '|---|---|---|---|---|---|---|---|---|---|']
  for name, m in s['models'].items():
    lines.append(f'| {name} | {_f(m["init_s"])} | {_f(m["trace_s"], 2)} | {_f(m["lower_s"], 2)} '
                 f'| {_f(m["compile_s"])} | {_f(m["compile_total_s"])} | {m["compile_samples"]} '
                 f'| {_f(m["eval_compile_s"])} | {m["macs"] / 1e6:,.2f} M '
                 f'| {_f(m["xla_gflops_ours"])} |')
  n = results['matmul']['n']
  lines += ['', '## f32 matmul peak', '',
            f'{n}x{n} @ {n}x{n}, median of {len(results["matmul"]["gflops"]["ours"])}: jnp '
            f'{_f(s["peak_gflops"], 0)} GFLOP/s, PyTorch {_f(s["peak_gflops_pytorch"], 0)} GFLOP/s.',
            '']
  between = {name: r['matmul_gflops'] for name, r in results['models'].items()
             if r.get('matmul_gflops')}
  if between:
    lines += ['jnp, timed again after each repeat of each model (the peak its % of peak reads; '
              'medians, with the range): ' + '; '.join(
                  f'{name} {_f(median(v), 0)} ({_f(min(v), 0)}-{_f(max(v), 0)})'
                  for name, v in between.items()) + '.', '']
  if s['start']:
    lines += ['## train.py: process start to first finished step, peak RSS', '',
              'ResNet-20, configs/default.py, logging every step; times (medians) run from launching '
              '`python train.py` to its printed model summary (imports, data loaded, state '
              'initialised) and to its line for step 1 (the step compiled and run). Peak RSS: the largest over the '
              'runs (ru_maxrss from wait4); the first CIFAR-10-sized run trains on to the step '
              'shown, the others stop after step 1.', '',
              '| dataset | runs | start to model summary (s) | start to first step (s) '
              '| peak RSS (GiB) | steps |',
              '|---|---|---|---|---|---|']
    for kind, r in s['start'].items():
      lines.append(f'| {startup.START_KINDS[kind][0]} | {r["runs"]} | {_f(r["summary_s"])} '
                   f'| {_f(r["first_step_s"])} | {r["rss_gib"]:.2f} | {r["max_steps"]} |')
    lines.append('')
  for name, title, _ in EMBEDDED:
    run = results.get(name)
    if run:
      lines += [f'## {title}', '', f'`{run["command"]}` (exit {run["returncode"]}):', '',
                '```', run['stdout'] or '(no output)', '```', '']
  lines += ['## How to read this', '',
            '- Both sides use the same batch every step (no input pipeline), the same '
            'optimizer (SGD momentum 0.9, weight decay 1e-4) and train-mode BatchNorm; PyTorch '
            'is eager, channels_last, one thread per usable core. Parameter counts are checked '
            'equal before timing.',
            '- Ours is `steps.train_step` under `parallel.DataParallel` with configs/default.py, '
            'i.e. the step and defaults a `train.py` user gets.',
            f'- `{protocol.BF16}` rows: ours with `model.dtype=bfloat16` (oneDNN\'s bf16 convs where '
            'the CPU has AMX or AVX512-BF16, else XLA\'s), PyTorch under `torch.autocast(\'cpu\', '
            'torch.bfloat16)`; their % of peak is of the f32 peak. No goal reads them.',
            f'- Raw numbers (every repeat): `{results["json"]}` beside this file.',
            '']
  return '\n'.join(lines)
