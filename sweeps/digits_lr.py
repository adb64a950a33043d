"""How sensitive is ResNet-20 on the offline digits to its peak learning rate?

Four peak learning rates spanning 30x (cosine schedule, SGD momentum 0.9, weight decay 5e-4, as in
configs/digits.py) trained for 5 epochs instead of 15, each with two seeds: 8 trials. The table
gives final and best test accuracy (360 test images, so one image is 0.28%) as mean ± std over the
seeds; the plot shows test accuracy against the learning rate.

  python -m resnet_flax.sweep sweeps/digits_lr.py --workdir runs/sweeps/digits_lr
  # then runs/sweeps/digits_lr/results.md, results.csv, results.png; rerun to resume

Offline. Add --parallel 2 on a machine with 4+ cores or 2 GPUs, or --launcher slurm --partition P
for a cluster.

Results of a run: benchmarks/NOTES.md (Sweeps).
"""


def get_sweep():
  return {
      'config': 'configs/digits.py',
      'fixed': {'num_epochs': 5},
      'grid': {'optim.learning_rate': [0.01, 0.03, 0.1, 0.3]},
      'seeds': [0, 1],
      'slurm': {'time': '00:15:00', 'cpus-per-task': 4},
  }
