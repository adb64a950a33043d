"""Every config field's type and range, in one table beside configs/default.py's documentation.

`validate(config)` runs first in `train_and_evaluate`, before any data is loaded or device is
touched: a bad value is one UserError naming the field, its value and what is allowed, not a
traceback minutes later. What depends on more than one field or on the data and devices
(divisibility of the batch sizes by the device count, milestones after the warm-up, a crop
smaller than the images, adamw with coupled decay, ...) is checked where it is known.

tests/test_config_rules.py fails for a field of configs/default.py without a rule here, and
feeds every rule's refused values (and values of other types than the default's) to its field.
Fields a config lacks are not checked: configs saved in older checkpoints predate some fields,
and only the config being started is validated.
"""

from collections.abc import Iterator, Mapping
from typing import Any

from resnet_flax.cpu.backend import BACKENDS
from resnet_flax.data.augment import CROP_MODES
from resnet_flax.data.on_device import ON_DEVICE_SETTINGS
from resnet_flax.data.policies import NUM_BINS, POLICIES
from resnet_flax.data.sources import CIFAR100_LABELS, NORMALIZATIONS
from resnet_flax.errors import UserError
from resnet_flax.models import registry
from resnet_flax.reporting.writer import WANDB_MODES
from resnet_flax.training import build, layout, optim, parallel
from resnet_flax.training.rules import (Rule, boolean, increasing_ints, integer, non_negative,
                                        non_negative_int, number, numbers, one_of, positive,
                                        positive_int, probability, string)

DTYPES = ('float32', 'bfloat16', 'float16')
BEST_METRICS = ('test_accuracy', 'test_loss', 'val_accuracy', 'val_loss')

RULES: dict[str, Rule] = {
    'seed': non_negative_int(),

    'model.name': one_of(lazy=registry.list_models, what='python -m resnet_flax.models --list'),
    'model.dtype': one_of(*DTYPES),
    'model.bn_momentum': probability(),
    'model.bn_epsilon': positive(),
    'model.bn_running_var': one_of(*build.BN_RUNNING_VARS),
    'model.dropout_rate': number(0.0, 1.0, high_open=True),
    'model.zero_init_last_bn': boolean(),
    'model.scan_blocks': one_of(*layout.CHOICES['scan_blocks']),
    'model.remat_blocks': one_of(*layout.CHOICES['remat_blocks']),
    'model.conv_backend': one_of(*BACKENDS),
    'model.recompute_bn': one_of('auto', 'on', 'off'),
    'model.init_from': string(what="a PyTorch state dict's path, or '' for none"),
    'model.init_reinit_head': boolean(),

    'data.dataset': string(nonempty=True, what='a tfds name, cifar10_files, digits, synthetic, ...'),
    'data.data_dir': string(),
    'data.download': boolean(),
    'data.train_split': string(nonempty=True),
    'data.test_split': string(nonempty=True),
    'data.cifar_dir': string(),
    'data.cifar100_labels': one_of(*CIFAR100_LABELS),
    'data.validation_size': non_negative_int('0: no validation split'),
    'data.image_size': non_negative_int('0: the native size'),
    'data.grayscale_to_rgb': boolean(),
    'data.mean': numbers(0.0, 1.0, what="one per channel; () for the dataset's own"),
    'data.std': numbers(0.0, low_open=True, what="one per channel; () for the dataset's own"),
    'data.normalization': one_of(*NORMALIZATIONS),
    'data.on_device': one_of(*ON_DEVICE_SETTINGS),
    'data.synthetic.num_train': positive_int(),
    'data.synthetic.num_test': positive_int(),
    'data.synthetic.image_size': positive_int(),
    'data.synthetic.channels': positive_int(),
    'data.synthetic.num_classes': integer(2),
    'data.synthetic.noise': non_negative(),
    'data.synthetic.seed': non_negative_int(),

    'augment.crop_padding': non_negative_int('0: off'),
    'augment.crop_mode': one_of(*CROP_MODES),
    'augment.flip': boolean(),
    'augment.cutout': non_negative_int('0: off'),
    'augment.cutout_per_batch': boolean(),
    'augment.mixup_alpha': non_negative('0: off'),
    'augment.cutmix_alpha': non_negative('0: off'),
    'augment.mix_switch_prob': probability(),
    'augment.policy': one_of(*POLICIES),
    'augment.randaugment_n': positive_int('ops per image'),
    'augment.randaugment_m': Rule(f'a whole number from 0 to {NUM_BINS - 1} (a magnitude bin)',
                                  lambda v: isinstance(v, int) and not isinstance(v, bool)
                                  and 0 <= v < NUM_BINS,
                                  (-1, NUM_BINS, 9.0, 4.5, True, 'abc', None, (1,))),

    'batch_size': positive_int('the global batch; a multiple of the device count'),
    'eval_batch_size': positive_int('the global batch; a multiple of the device count'),
    'num_epochs': non_negative_int('0 only with num_steps or num_examples'),
    'num_steps': non_negative_int('0: use num_examples or num_epochs'),
    'num_examples': non_negative_int('0: use num_epochs'),

    'optim.optimizer': one_of(*optim.OPTIMIZERS),
    'optim.learning_rate': non_negative(),
    'optim.lr_scaling': one_of(*optim.LR_SCALINGS),
    'optim.lr_base_batch': positive_int(),
    'optim.momentum': number(0.0, 1.0, high_open=True, what='0: none'),
    'optim.nesterov': boolean(),
    'optim.adam_b1': number(0.0, 1.0, high_open=True),
    'optim.adam_b2': number(0.0, 1.0, high_open=True),
    'optim.adam_eps': non_negative(),
    'optim.adam_eps_placement': one_of(*optim.ADAM_EPS_PLACEMENTS),
    'optim.lars_trust_coefficient': non_negative(),
    'optim.weight_decay': non_negative('0: off'),
    'optim.weight_decay_mode': one_of(*optim.WEIGHT_DECAY_MODES),
    'optim.decay_bn_and_bias': boolean(),
    'optim.label_smoothing': probability(),
    'optim.clip_grad_norm': non_negative('0: off'),
    'optim.sam_rho': non_negative('0: off'),
    'optim.ema_decay': number(0.0, 1.0, high_open=True, what='0: off, e.g. 0.999'),
    'optim.schedule': one_of(*optim.SCHEDULES),
    'optim.milestones': increasing_ints('(82, 123)'),
    'optim.decay_factor': non_negative(),
    'optim.milestones_unit': one_of(*optim.MILESTONES_UNITS),
    'optim.decay_every_epochs': positive(),
    'optim.decay_begin_epochs': non_negative(),
    'optim.warmup_epochs': non_negative('0: off'),
    'optim.onecycle_pct_start': number(0.0, 1.0, low_open=True, high_open=True),
    'optim.onecycle_div_factor': positive(),
    'optim.onecycle_final_div_factor': positive(),
    'optim.he_milestones_steps': increasing_ints('(32000, 48000)'),
    'optim.he_warmup_steps': non_negative_int('0: off'),

    'parallel.mode': one_of(*parallel.MODES),
    'parallel.batch_norm': one_of(*parallel.BATCH_NORMS),
    'parallel.distributed': boolean(),
    'parallel.coordinator_address': string(what="'host:port', or '' to detect"),
    'parallel.num_processes': non_negative_int('0: detect'),
    'parallel.process_id': integer(-1, '-1: detect'),
    'parallel.cpu_devices': non_negative_int('0: auto'),
    'parallel.transfer_guard': one_of(*parallel.TRANSFER_GUARDS),
    'parallel.preemption_check_every_steps': positive_int(),

    'compilation_cache_dir': string(what="a directory, or '' for off"),
    'cpu_host_memory_tuning': boolean(),
    'log_every_steps': positive_int(),
    'eval_every_epochs': positive_int('a large value makes it rare'),
    'eval_every_steps': non_negative_int('0: off'),
    'checkpoint_every_epochs': positive_int('a large value makes it rare'),
    'checkpoint_every_steps': non_negative_int('0: off'),
    'checkpoint_keep': positive_int(),
    'checkpoint_keep_best': non_negative_int('0: off'),
    'checkpoint_best_metric': one_of(*BEST_METRICS),
    'progress_bar': boolean(),
    'tensorboard': boolean(),
    'wandb.project': string(what="a W&B project name, or '' for off"),
    'wandb.entity': string(what="a W&B user or team, or '' for your default"),
    'wandb.name': string(what="the run's display name, or '' for the workdir's name"),
    'wandb.mode': Rule("one of 'online', 'offline', 'disabled', or '' for $WANDB_MODE",
                       lambda v: isinstance(v, str) and v in WANDB_MODES,
                       ('no such mode', 'OFFLINE', 1, True, None, ('a',)),
                       choices=lambda: WANDB_MODES),
    'write_plots': boolean(),
    'profile_steps': non_negative_int('0: off'),
}


def leaves(config: Mapping[str, Any], prefix: str = '') -> Iterator[tuple[str, Any]]:
  """(dotted path, value) of every field of a ConfigDict or nested dict, depth first; a field
  with a rule is a leaf even where it holds a dict (which its rule then refuses)."""
  for key, value in config.items():
    path = f'{prefix}{key}'
    if _is_section(value) and path not in RULES:
      yield from leaves(value, f'{path}.')
    else:
      yield path, value


def _is_section(value: Any) -> bool:
  return isinstance(value, Mapping) or hasattr(value, 'items') and not isinstance(value, str)


def field_problem(path: str, value: Any) -> str | None:
  """None when `value` suits the field at dotted `path` (or it has no rule), else the message."""
  rule = RULES.get(path)
  problem = rule.problem(value) if rule else None
  if problem is None:
    return None
  if _is_section(value):
    value = dict(value)
  return (f'--config.{path}={value!r} must be {problem}. Change it in the config file or the '
          '--config override.')


def validate(config: Mapping[str, Any]) -> None:
  """Raises UserError for the first field whose value its rule refuses (fields a config lacks,
  or that have no rule, are left to the code that reads them)."""
  for path, value in leaves(config):
    problem = field_problem(path, value)
    if problem:
      raise UserError(problem)
