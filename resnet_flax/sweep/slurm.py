"""The SLURM launcher: DIR/sweep.sbatch, a job array with one trial per array task.

The script is self-contained: a `case` on $SLURM_ARRAY_TASK_ID names each task's trial and its
overrides, so it can be read, resubmitted by hand (`sbatch DIR/sweep.sbatch`) or run for one
task (`SLURM_ARRAY_TASK_ID=3 bash DIR/sweep.sbatch`). A task whose trial has results.json exits
at once; any other runs train.py, which resumes from the trial's newest checkpoint. It assumes the
cluster's nodes see this checkout, its Python and DIR at the same paths (a shared file system).
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from typing import Any

from resnet_flax.errors import UserError
from resnet_flax.sweep.spec import TRAIN_PY, Sweep, Trial, override_flags

_TEMPLATE = '''#!/bin/bash
# resnet_flax sweep {sweep_file}: {count} trials, one per array task. Written by
#   {command}
# Resubmitting this script, or rerunning that command, resumes unfinished trials and skips
# finished ones. Each trial logs to {workdir}/TRIAL/log.txt.
{directives}
set -uo pipefail
case "${{SLURM_ARRAY_TASK_ID:?run this script as a job array task: sbatch {script}}}" in
{cases}
  *) echo "this sweep has no array task $SLURM_ARRAY_TASK_ID (0-{last})" >&2; exit 2 ;;
esac
dir={workdir}/$name
if [[ -f "$dir/results.json" ]]; then
  echo "$name: finished earlier (results.json); nothing to do"
  exit 0
fi
mkdir -p "$dir"
job="slurm job ${{SLURM_ARRAY_JOB_ID:-?}}_$SLURM_ARRAY_TASK_ID on $(hostname)"
echo "=== $(date '+%F %T') start: $job" >> "$dir/log.txt"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL="${{TF_CPP_MIN_LOG_LEVEL:-2}}"
cd {root}
{python} {train_py} --config {config} --workdir "$dir" {fixed} "${{overrides[@]}}" \
  >> "$dir/log.txt" 2>&1
code=$?
echo "=== $(date '+%F %T') exit $code" >> "$dir/log.txt"
echo "$name: train.py exited with status $code"
exit $code
'''


def sbatch_options(sweep: Sweep, flags: dict[str, Any]) -> dict[str, Any]:
  """The sweep file's `slurm` options, then the command line's (which win); '_' -> '-'."""
  options = {}
  for source in (sweep.slurm, flags):
    for key, value in source.items():
      if value is not None:
        options[key.replace('_', '-').lstrip('-')] = value
  for key, value in options.items():
    if '\n' in f'{key}{value}':
      raise UserError(f'sbatch option {key}={value!r} spans lines; give a one-line value.')
  return options


def write_script(sweep: Sweep, trials: list[Trial], workdir: str, options: dict[str, Any],
                 parallel: int | None, command: str) -> str:
  """Writes DIR/sweep.sbatch (and creates DIR/slurm/ for SLURM's own output); returns its path."""
  script = os.path.join(workdir, 'sweep.sbatch')
  os.makedirs(os.path.join(workdir, 'slurm'), exist_ok=True)
  throttle = f'%{parallel}' if parallel else ''
  name = re.sub(r'[^\w.-]', '_', os.path.basename(os.path.normpath(workdir)))
  directives = {'job-name': f'sweep-{name}', 'array': f'0-{len(trials) - 1}{throttle}',
                'output': os.path.join(workdir, 'slurm', '%A_%a.out')} | options
  q = shlex.quote  # sbatch reads quoted #SBATCH values as the shell would
  lines = [f'#SBATCH --{k}' if v is True else f'#SBATCH --{k}={q(str(v))}'
           for k, v in directives.items() if v is not False]
  cases = [f'  {i}) name={q(t.name)}; overrides=({shlex.join(override_flags(_own(t)))}) ;;'
           for i, t in enumerate(trials)]
  text = _TEMPLATE.format(
      sweep_file=sweep.path, count=len(trials), command=command, workdir=q(workdir),
      directives='\n'.join(lines), script=q(script), cases='\n'.join(cases), last=len(trials) - 1,
      root=q(os.path.dirname(TRAIN_PY)), python=q(sys.executable), train_py=q(TRAIN_PY),
      config=q(sweep.config), fixed=shlex.join(override_flags(sweep.fixed)))
  with open(script + '.tmp', 'w') as f:
    f.write(text)
  os.replace(script + '.tmp', script)
  return script


def _own(trial: Trial) -> dict[str, Any]:
  return trial.overrides | ({} if trial.seed is None else {'seed': trial.seed})


def active_jobs(workdir: str) -> list[str]:
  """Job ids this sweep submitted that SLURM still has queued or running."""
  path = os.path.join(workdir, 'slurm', 'jobs.txt')
  if not os.path.isfile(path) or not shutil.which('squeue'):
    return []
  with open(path) as f:
    ids = [line.split()[0] for line in f if line.strip()]
  active = []
  for job in ids:
    out = subprocess.run(['squeue', '--noheader', '--jobs', job, '--format=%i'],
                         capture_output=True, text=True, check=False)
    if out.returncode == 0 and out.stdout.strip():  # squeue fails for jobs it has forgotten
      active.append(job)
  return active


def submit(script: str, workdir: str, indices: list[int], parallel: int | None) -> str:
  """sbatch for the array tasks `indices` (the unfinished trials); returns the job id."""
  if not shutil.which('sbatch'):
    raise UserError(f'sbatch is not on PATH, so the sweep cannot be submitted. Run this on a '
                    f'SLURM login node, or use --dry-run to only write {script}.')
  array = ','.join(map(str, indices)) + (f'%{parallel}' if parallel else '')
  proc = subprocess.run(['sbatch', '--parsable', f'--array={array}', script],
                        capture_output=True, text=True, check=False)
  if proc.returncode != 0:
    raise UserError(f'sbatch refused {script}: {proc.stderr.strip() or proc.stdout.strip()}. '
                    'Fix the sbatch options (the sweep file\'s "slurm" dict, --partition, '
                    '--time, --gpus, --sbatch KEY=VALUE) and rerun.')
  job = proc.stdout.strip().split(';')[0]
  with open(os.path.join(workdir, 'slurm', 'jobs.txt'), 'a') as f:
    f.write(f'{job} {array}\n')
  return job
