"""What the curves show: loss on a log scale with train and test on one axis, the lr of every
step at its step."""

from matplotlib.figure import Figure

from resnet_flax.reporting import plot

TRAIN = [{'step': 2, 'epoch': 0.5, 'loss': 2.0, 'accuracy': 0.1, 'learning_rate': 0.15,
          'learning_rate_steps': [0.1, 0.2]},
         {'step': 4, 'epoch': 1.0, 'loss': 1.0, 'accuracy': 0.5, 'learning_rate': 0.35,
          'learning_rate_steps': [0.3, 0.4]}]
TEST = [{'step': 4, 'epoch': 1.0, 'test_loss': 1.5, 'test_accuracy': 0.4}]


def draw(panel, records):
  ax = Figure().add_subplot()
  plot._draw(ax, panel, [('run', records)])  # pylint: disable=protected-access
  return ax


def test_loss_on_a_log_scale_with_train_and_test_on_one_axis():
  ax = draw('loss', TRAIN + TEST)
  assert ax.get_yscale() == 'log'
  (train, test) = [list(line.get_ydata()) for line in ax.get_lines()]
  assert train == [2.0, 1.0] and test == [1.5]
  assert draw('accuracy', TRAIN + TEST).get_yscale() == 'linear'


def test_lr_of_every_step_at_its_step():
  (line,) = draw('lr', TRAIN).get_lines()
  assert list(line.get_xdata()) == [1, 2, 3, 4]
  assert list(line.get_ydata()) == [0.1, 0.2, 0.3, 0.4]


def test_records_without_per_step_lr_plot_their_mean():
  old = [{k: v for k, v in r.items() if k != 'learning_rate_steps'} for r in TRAIN]
  (line,) = draw('lr', old).get_lines()
  assert list(line.get_xdata()) == [2, 4] and list(line.get_ydata()) == [0.15, 0.35]
