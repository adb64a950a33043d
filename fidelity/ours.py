"""Our side: the recipe's own config, model, optimizer and train step from the same start.

Everything runs through resnet_flax's real code: `build.create_model` / `build.create_state`
from the recipe's config (with `recipes.Recipe.overrides` compressing the run), the reference's
initial weights through our PyTorch importer, and the jitted `steps.train_step`. float64 needs
`jax_enable_x64` (set by the caller before JAX computes anything), `model.dtype='float64'` and
XLA's convolutions (oneDNN's are float32/bfloat16 only).
"""

import functools
import importlib
from typing import Any

import jax
import numpy as np

from fidelity import names, recipes
from resnet_flax.pytorch import from_pytorch
from resnet_flax.training import build, config_help, steps as steps_lib


def config_for(recipe: recipes.Recipe, dtype: str, steps: int):
  """The recipe's config with the compressed run: its batch, its steps, its schedule."""
  config = importlib.import_module(recipe.config).get_config()
  return config_help.set_fields(config, {
      **recipe.overrides, 'model.dtype': dtype, 'model.conv_backend': 'xla',
      'batch_size': recipe.batch_size, 'num_steps': steps})


def train(recipe: recipes.Recipe, dtype: str, steps: int,
          init_state_dict: dict[str, np.ndarray]) -> dict[str, Any]:
  """{'losses', 'lrs', 'logits', 'variables'} after `steps` steps from the reference's
  initial state dict (torch names), on recipes.batches' data."""
  if dtype == 'float64' and not jax.config.jax_enable_x64:
    raise RuntimeError('float64 parity needs jax.config.update("jax_enable_x64", True) first')
  config = config_for(recipe, dtype, steps)
  model = build.create_model(config.model, recipe.num_classes)
  shape = (recipe.image_size, recipe.image_size, recipe.channels)
  state, schedule, rng = build.create_state(config, model, shape, recipe.steps_per_epoch)
  start = names.variables(init_state_dict, recipe.layout, np.dtype(dtype))
  from_pytorch.check_compatible({'params': state.params, 'batch_stats': state.batch_stats}, start)
  state = state.replace(params=start['params'], batch_stats=start['batch_stats'],
                        opt_state=state.tx.init(start['params']))
  step = jax.jit(functools.partial(steps_lib.train_step, schedule=schedule,
                                   label_smoothing=config.optim.label_smoothing))
  images, labels, eval_images = recipes.batches(recipe, steps)
  losses, lrs = [], []
  for i in range(steps):
    state, metrics = step(state, {'image': images[i].astype(dtype), 'label': labels[i]}, rng)
    losses.append(float(metrics['loss']))
    lrs.append(float(metrics['learning_rate']))
  variables = {'params': state.params, 'batch_stats': state.batch_stats}
  logits = model.apply(variables, eval_images.astype(dtype), train=False)
  return {'losses': np.array(losses), 'lrs': np.array(lrs), 'logits': np.asarray(logits),
          'variables': jax.tree.map(np.asarray, variables)}
