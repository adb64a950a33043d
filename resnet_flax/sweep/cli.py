"""The sweep command line: plan the trials, launch them locally or on SLURM, collect the results.

Exit status: 0 when every trial has finished (or, with slurm, was submitted), 1 when a local trial
failed or was interrupted, 2 for a mistake in the sweep file or the flags.
"""

import argparse
import contextlib
import fcntl
import os
import shlex
import sys
from collections.abc import Iterator
from typing import Any

from resnet_flax.errors import UserError
from resnet_flax.sweep import local, results, slurm, status
from resnet_flax.sweep.spec import TRAIN_PY, Sweep, Trial, load_sweep, trials

USAGE = '''python -m resnet_flax.sweep SWEEP.py --workdir DIR [--parallel N]
         [--launcher local|slurm] [--dry-run] [--partition P] [--time T] [--gpus G] [--sbatch K=V]
       python -m resnet_flax.sweep collect DIR'''


def main(argv: list[str] | None = None) -> None:
  argv = sys.argv[1:] if argv is None else argv
  if argv[:1] == ['collect']:
    parser = argparse.ArgumentParser(prog='python -m resnet_flax.sweep collect', usage=USAGE,
                                     description='Writes the result tables of a sweep directory.')
    parser.add_argument('workdir', metavar='DIR')
    _print_results(results.collect(parser.parse_args(argv[1:]).workdir))
    return
  args = _parser().parse_args(argv)
  sweep = load_sweep(args.sweep_file)
  planned = trials(sweep)
  settings, seeds = len({t.setting for t in planned}), len(sweep.seeds) or 1
  print(f'{args.sweep_file}: {len(planned)} trials ({settings} setting{"s" * (settings != 1)} x '
        f'{seeds} seed{"s" * (seeds != 1)}) in {args.workdir}')
  command = shlex.join(['python', '-m', 'resnet_flax.sweep', *argv])
  if args.launcher == 'local':
    _run_local(args, sweep, planned)
  else:
    _run_slurm(args, sweep, planned, command)


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog='python -m resnet_flax.sweep', usage=USAGE,
                                   description=__doc__.split('\n')[0])
  parser.add_argument('sweep_file', metavar='SWEEP.py', help='a Python file with get_sweep()')
  parser.add_argument('--workdir', required=True, metavar='DIR',
                      help='one subdirectory per trial, and the result tables')
  parser.add_argument('--launcher', choices=('local', 'slurm'), default='local')
  parser.add_argument('--parallel', type=int, metavar='N',
                      help='trials at once (local: default 1, each on its own GPUs when there '
                      'are GPUs; slurm: array tasks at once, default no limit)')
  parser.add_argument('--dry-run', action='store_true',
                      help='local: print the commands; slurm: write DIR/sweep.sbatch, no sbatch')
  group = parser.add_argument_group('slurm', 'sbatch options; they override the sweep file\'s')
  group.add_argument('--partition')
  group.add_argument('--time', help='per trial, e.g. 02:00:00')
  group.add_argument('--gpus', help='per trial, e.g. 1')
  group.add_argument('--sbatch', action='append', default=[], metavar='KEY=VALUE',
                     help='any other sbatch option, e.g. --sbatch mem=16G; repeatable')
  return parser


def _run_local(args: argparse.Namespace, sweep: Sweep, planned: list[Trial]) -> None:
  parallel = args.parallel or 1
  if args.dry_run:
    slots = local.device_slots(parallel, local.visible_gpus())
    for trial in planned:
      finished = status.finished(os.path.join(args.workdir, trial.name))
      done = '  # finished: skipped' if finished else ''
      print(shlex.join([sys.executable, TRAIN_PY, *trial.args(sweep, args.workdir)]) + done)
    print(f'{len(slots)} at a time' + (f', on GPUs {[s["CUDA_VISIBLE_DEVICES"] for s in slots]}'
                                       if slots[0] else ''))
    return
  _make_workdir(args.workdir)
  with _lock(args.workdir):
    results.write_plan(args.workdir, _plan(sweep, planned, args.workdir))
    ok = local.run_trials(sweep, planned, args.workdir, parallel)
    _print_results(results.collect(args.workdir))
  if not ok:
    sys.exit(1)


def _run_slurm(args: argparse.Namespace, sweep: Sweep, planned: list[Trial], command: str) -> None:
  flags: dict[str, Any] = {'partition': args.partition, 'time': args.time, 'gpus': args.gpus}
  for option in args.sbatch:
    key, sep, value = option.partition('=')
    flags[key] = value if sep else True
  options = slurm.sbatch_options(sweep, flags)
  _make_workdir(args.workdir)
  active = slurm.active_jobs(args.workdir)
  if active:
    raise UserError(f'SLURM job {", ".join(active)} of this sweep is still queued or running; '
                    'submitting again would run trials twice in the same directory. Wait for it '
                    f'(squeue -j {active[0]}) or cancel it (scancel {active[0]}). '
                    f'`python -m resnet_flax.sweep collect {args.workdir}` tabulates the trials '
                    'finished so far.')
  results.write_plan(args.workdir, _plan(sweep, planned, args.workdir))
  script = slurm.write_script(sweep, planned, args.workdir, options, args.parallel, command)
  todo = [i for i, t in enumerate(planned)
          if not status.finished(os.path.join(args.workdir, t.name))]
  print(f'wrote {script} and {os.path.join(args.workdir, "trials.json")}; '
        f'{len(planned) - len(todo)} trials finished earlier')
  if not todo:
    _print_results(results.collect(args.workdir))
  elif args.dry_run:
    print(f'dry run: submit with  sbatch --array={",".join(map(str, todo))} {script}')
  else:
    job = slurm.submit(script, args.workdir, todo, args.parallel)
    print(f'submitted SLURM job {job}: {len(todo)} array tasks. Follow one with '
          f'tail -f {args.workdir}/TRIAL/log.txt; when they are done, rerun this command or '
          f'python -m resnet_flax.sweep collect {args.workdir}')


def _plan(sweep: Sweep, planned: list[Trial], workdir: str) -> dict[str, Any]:
  return {'sweep_file': os.path.abspath(sweep.path), 'config': sweep.config, 'fixed': sweep.fixed,
          'seeds': sweep.seeds,
          'trials': [{'name': t.name, 'setting': t.setting, 'overrides': t.overrides,
                      'seed': t.seed, 'args': t.args(sweep, workdir)} for t in planned]}


def _make_workdir(workdir: str) -> None:
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise UserError(f'Cannot create the sweep directory {workdir} ({e.strerror or e}). Choose a '
                    'writable --workdir.') from None


@contextlib.contextmanager
def _lock(workdir: str) -> Iterator[None]:
  """One local sweep per directory: two would run the same trials in the same trial dirs."""
  with open(os.path.join(workdir, '.sweep.lock'), 'w') as f:
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      raise UserError(f'Another sweep is running in {workdir}. Wait for it to end (or stop it); '
                      'rerunning afterwards skips the trials it finished.') from None
    yield


def _print_results(collected: dict[str, Any]) -> None:
  with open(collected['files']['md']) as f:
    print('\n' + f.read())
  print('wrote ' + ', '.join(collected['files'].values()))
