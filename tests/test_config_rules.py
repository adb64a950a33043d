"""The config table (training/config_rules.py): every field has a rule, every rule refuses what it
should, and every refusal is one UserError naming the field, its value and what is allowed.

The refused values are generated, not listed: from each field's rule (its wrong types and the
values just outside its range) and, independently of the rules, from the type of the field's
default (values of every other type), for every leaf of configs/default.py.
"""

import glob
import importlib.util
import math
import os
import subprocess
import sys

import pytest
from absl import flags
from ml_collections import config_flags

from configs import default
from resnet_flax.errors import UserError
from resnet_flax.training import config_rules

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT = default.get_config()
FIELDS = dict(config_rules.leaves(DEFAULT))

# Values of each type; a field refuses those of every type but its default's (ints count as
# floats, as ml_collections converts them; tuples and lists are both sequences).
BY_TYPE = {
    bool: [True, False],
    int: [0, 3, -2],
    float: [0.5, -1.5, float('nan')],
    str: ['abc', ''],
    tuple: [(), (1, 2), ('a',)],
    type(None): [None],
    dict: [{}],
}
ALSO_ALLOWED = {int: (), float: (int,), bool: (), str: (), tuple: (list,)}


def other_type_values(default_value):
  kind = type(default_value)
  allowed = (kind, *ALSO_ALLOWED[kind])
  return [v for t, values in BY_TYPE.items() if t not in allowed or t is bool and kind is not bool
          for v in values if type(v) not in allowed or isinstance(v, bool) and kind is not bool]


def with_value(path, value):
  """The default config as nested dicts with one field set: a dict keeps any value as it is
  (a ConfigDict would turn True into 1.0 in a float field)."""
  config = DEFAULT.to_dict()
  *parents, leaf = path.split('.')
  node = config
  for key in parents:
    node = node[key]
  node[leaf] = value
  return config


def check_refused(path, value):
  with pytest.raises(UserError) as error:
    config_rules.validate(with_value(path, value))
  message = str(error.value)
  assert message.startswith(f'--config.{path}={value!r} must be '), message
  assert config_rules.RULES[path].allowed in message


def test_every_field_of_the_default_config_has_a_rule_and_every_rule_a_field():
  assert sorted(FIELDS) == sorted(config_rules.RULES)


def test_every_shipped_config_is_valid():
  paths = [p for p in glob.glob(os.path.join(ROOT, 'configs', '**', '*.py'), recursive=True)
           if not p.endswith('__init__.py')]
  assert len(paths) > 10
  for path in paths:
    spec = importlib.util.spec_from_file_location('_config', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config_rules.validate(module.get_config())  # raises for a rule stricter than a recipe


@pytest.mark.parametrize('path', sorted(FIELDS))
def test_each_field_refuses_its_rules_bad_values_and_other_types(path):
  rule = config_rules.RULES[path]
  values = list(rule.refused) + other_type_values(FIELDS[path])
  assert len(rule.refused) >= 5
  for value in values:
    check_refused(path, value)
  assert config_rules.field_problem(path, FIELDS[path]) is None


@pytest.mark.parametrize('path, value', [
    ('batch_size', 1), ('optim.momentum', 0.0), ('optim.momentum', 0), ('optim.label_smoothing', 1.0),
    ('optim.milestones', ()), ('optim.milestones', (0,)), ('optim.milestones', [3, 7]),
    ('data.mean', ()), ('data.std', (0.2, 0.3, 0.4)), ('parallel.process_id', -1),
    ('model.dtype', 'bfloat16'), ('model.name', 'resnet110'), ('optim.learning_rate', 2),
    ('num_epochs', 0), ('data.synthetic.num_classes', 2),
])
def test_edges_of_the_ranges_are_allowed(path, value):
  config_rules.validate(with_value(path, value))


def test_the_first_bad_field_is_named_and_missing_fields_are_not_required():
  config = with_value('optim.schedule', 'sine')
  with pytest.raises(UserError, match=r"optim.schedule='sine' must be one of .*'cosine'"):
    config_rules.validate(config)
  older = DEFAULT.to_dict()
  del older['optim']['ema_decay'], older['data']['on_device']  # a config from before them
  config_rules.validate(older)


def test_names_get_a_close_match():
  with pytest.raises(UserError, match=r"model.dtype='float8' must be one of .*did you mean"):
    config_rules.validate(with_value('model.dtype', 'float8'))


def parse(*overrides):
  """train.py's flag definition, in a fresh flag namespace: the config as --config.x=y makes it
  (the override flags are defined from the arguments, as train.py's are from sys.argv)."""
  argv = ['train.py', *overrides]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', os.path.join(ROOT, 'configs', 'default.py'),
                                  flag_values=values, lock_config=True, sys_argv=argv)
  values(argv)
  return values.config


def cli_text(value):
  """`value` as the shell hands it to train.py: strings bare, tuples as Python literals."""
  return repr(value) if isinstance(value, tuple) else str(value)


@pytest.mark.parametrize('path', sorted(FIELDS))
def test_bad_command_line_values_fail_flag_parsing_or_validation(path):
  """Through the command line, each refused value written as text fails flag parsing, naming the
  flag (train.py's parse_flags prints it as `error: ...`), or arrives as a value that validation
  refuses naming the field, unless the text means an allowed value (the string '1', `1` for
  True, `5` for the tuple (5,))."""
  rule, refusals = config_rules.RULES[path], 0
  for value in rule.refused:
    if isinstance(value, float) and math.isnan(value) or value in ([], {}):
      continue
    try:
      config = parse(f'--config.{path}={cli_text(value)}')
    except flags.IllegalFlagValueError as e:
      assert f'--config.{path}=' in str(e)
      refusals += 1
      continue
    parsed = dict(config_rules.leaves(config))[path]
    if rule.accepts(parsed):
      config_rules.validate(config)
    else:
      with pytest.raises(UserError, match=f'--config.{path}='):
        config_rules.validate(config)
      refusals += 1
  free_text = isinstance(FIELDS[path], str) and rule.choices is None and rule.accepts('')
  assert refusals or free_text, 'every refused value became an allowed one: nothing was tested'


# The mistakes of issue 28's table, and a few more of each kind, each with the field it names:
# written out here, independently of the rules, so that a rule made too lax fails.
MISTAKES = [
    ('batch_size', 0), ('batch_size', -8), ('eval_batch_size', 0), ('model.dtype', 'float8'),
    ('optim.milestones', ('abc',)), ('optim.milestones', (123, 82)), ('optim.label_smoothing', 1.5),
    ('augment.mix_switch_prob', -0.1), ('model.bn_momentum', 1.1), ('optim.learning_rate', -0.1),
    ('optim.weight_decay', -1e-4), ('model.dropout_rate', 1.0), ('optim.ema_decay', 1.0),
    ('parallel.mode', 'pjit'), ('data.std', (0.2, 0.0, 0.2)), ('checkpoint_keep', 0),
    ('log_every_steps', 0), ('num_steps', -1), ('seed', 'abc'), ('progress_bar', 'yes'),
]


@pytest.mark.parametrize('path, value', MISTAKES)
def test_known_mistakes_are_refused(path, value):
  check_refused(path, value)


CLI_CASES = [  # issue 28's table: tracebacks or nonsense runs before the config table
    ('--config.batch_size=0', 'batch_size=0'),
    ('--config.batch_size=-8', 'batch_size=-8'),
    ('--config.eval_batch_size=0', 'eval_batch_size=0'),
    ('--config.model.dtype=float8', "model.dtype='float8'"),
    ('--config.optim.milestones=abc', "optim.milestones=('abc',)"),
]


@pytest.mark.slow
def test_bad_overrides_exit_2_with_one_error_line(tmp_path):
  """train.py itself, one process per case, run side by side: exit 2, `error: --config.x=...`."""
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  procs = [subprocess.Popen(
      [sys.executable, os.path.join(ROOT, 'train.py'), '--config', 'configs/digits.py',
       '--workdir', str(tmp_path / str(i)), '--config.optim.schedule=step', override],
      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
      for i, (override, _) in enumerate(CLI_CASES)]
  for i, (proc, (override, named)) in enumerate(zip(procs, CLI_CASES)):
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, (override, out, err)
    assert 'Traceback' not in out + err, err
    assert f'error: --config.{named} must be' in err, err
    assert not (tmp_path / str(i)).exists(), 'refused before the workdir is made'
