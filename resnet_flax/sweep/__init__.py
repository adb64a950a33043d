"""Hyperparameter sweeps over config fields, run locally or as a SLURM job array.

  python -m resnet_flax.sweep SWEEP.py --workdir DIR [--parallel N] [--launcher local|slurm]
                                       [--dry-run] [--partition P --time T --gpus G --sbatch K=V]
  python -m resnet_flax.sweep collect DIR      # the result tables from what has finished

A sweep file is Python, like a config file; its get_sweep() returns a dict:

  from resnet_flax.sweep import log_uniform

  def get_sweep():
    return {
        'config': 'configs/digits.py',                  # base config (required)
        'fixed': {'num_epochs': 5},                     # overrides for every trial
        'grid': {'optim.learning_rate': [0.02, 0.05, 0.1]},   # every combination
        'random': {'optim.weight_decay': log_uniform(1e-5, 1e-3)},  # also uniform, int_uniform,
        'num_samples': 4, 'random_seed': 0,             #   choice; floats to 3 significant digits
        'seeds': [0, 1, 2],                             # config.seed of each repeat
        'slurm': {'partition': 'gpu', 'time': '01:00:00', 'gpus': 1},  # sbatch options
    }

The trials are grid combinations x random draws x seeds. Each runs `train.py --config CONFIG
--workdir DIR/TRIAL --config.key=value ...` in DIR/TRIAL, a name made of its overrides
(`optim.learning_rate=0.05,seed=1`). Keys and value types are checked against the base config
before anything runs. Rerunning the same command skips finished trials (results.json present) and
resumes the others from their checkpoints; failures are reported and do not stop other trials.
At the end DIR/results.csv (one row per trial), DIR/results.md (mean ± std over seeds per
setting) and DIR/results.png are written; DIR/trials.json lists the trials.
"""

from resnet_flax.sweep.spec import (
  Distribution,
  Sweep,
  Trial,
  choice,
  int_uniform,
  load_sweep,
  log_uniform,
  trial_name,
  trials,
  uniform,
)

__all__ = ['Distribution', 'Sweep', 'Trial', 'choice', 'int_uniform', 'load_sweep', 'log_uniform',
           'trial_name', 'trials', 'uniform']
