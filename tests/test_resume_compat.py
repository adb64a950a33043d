"""Checkpoints written before a config field existed: they resume when the field has the value
that reproduces how they ran, and are refused, naming the field, when it does not."""

from configs import default
from resnet_flax.checkpoints import resume


def saved_before_the_new_fields():
  saved = default.get_config().to_dict()
  del saved['model']['bn_running_var']
  del saved['optim']['decay_begin_epochs'], saved['optim']['adam_eps_placement']
  del saved['parallel']['preemption_check_every_steps']
  for field in ('policy', 'randaugment_n', 'randaugment_m'):
    del saved['augment'][field]
  return saved


def test_an_older_run_resumes_with_the_values_it_ran_with():
  current = default.get_config()
  current.model.bn_running_var = 'biased'  # flax's running variance, as before the field
  assert resume.config_differences(saved_before_the_new_fields(), current) == []


def test_an_older_run_is_refused_where_the_new_default_changes_what_it_computes():
  diffs = resume.config_differences(saved_before_the_new_fields(), default.get_config())
  assert diffs == ["model.bn_running_var: 'biased' -> 'unbiased'"]


def test_an_older_run_is_refused_when_a_policy_is_switched_on():
  current = default.get_config()
  current.model.bn_running_var = 'biased'
  current.augment.policy = 'autoaugment_cifar10'
  diffs = resume.config_differences(saved_before_the_new_fields(), current)
  assert diffs == ["augment.policy: 'none' -> 'autoaugment_cifar10'"]
