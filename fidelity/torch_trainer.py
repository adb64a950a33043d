"""The reference side: `python -m fidelity.torch_trainer RECIPE DTYPE STEPS OUT.npz` under the
interpreter that has torch (.venv-bench). Writes the initial state dict (`init/<name>`), the
per-step losses and learning rates, the final state dict (`final/<name>`) and eval-mode logits.

The loop is the reference's (recipes.Recipe.source): train mode, forward, criterion,
zero_grad, backward, optimizer.step; the scheduler steps at the end of each (compressed) epoch.
"""

import sys
import warnings

import numpy as np
import torch
from torch import nn

from fidelity import recipes, torch_nets


def _state(net: nn.Module) -> dict[str, np.ndarray]:
  return {k: v.detach().numpy().copy() for k, v in net.state_dict().items()
          if not k.endswith('num_batches_tracked')}


def train(recipe: recipes.Recipe, dtype: str, steps: int) -> dict[str, np.ndarray]:
  torch.manual_seed(0)
  net = torch_nets.create(recipe.net, recipe.num_classes)  # float32 init: exact in float64 too
  init = _state(net)
  torch_dtype = {'float64': torch.float64, 'float32': torch.float32}[dtype]
  net = net.to(torch_dtype)
  criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
  optimizer = getattr(torch.optim, recipe.optimizer_class)(net.parameters(), **recipe.optimizer)
  scheduler_name, scheduler_args = recipe.scheduler
  scheduler = getattr(torch.optim.lr_scheduler, scheduler_name)(optimizer, **scheduler_args)
  images, labels, eval_images = recipes.batches(recipe, steps)
  to_nchw = lambda x: torch.from_numpy(x).permute(0, 3, 1, 2).to(torch_dtype).contiguous()
  losses, lrs = [], []
  net.train()
  for i in range(steps):
    inputs, targets = to_nchw(images[i]), torch.from_numpy(labels[i])
    lrs.append(optimizer.param_groups[0]['lr'])
    optimizer.zero_grad()
    outputs = net(inputs)
    loss = criterion(outputs, targets)
    loss.backward()
    optimizer.step()
    if (i + 1) % recipe.steps_per_epoch == 0:  # an epoch's end
      if recipe.scheduler_gets_epoch:  # deprecated in torch, hence its warning silenced
        with warnings.catch_warnings():
          warnings.simplefilter('ignore', UserWarning)
          scheduler.step(i // recipe.steps_per_epoch)
      else:
        scheduler.step()
    losses.append(loss.item())
  net.eval()
  with torch.no_grad():
    logits = net(to_nchw(eval_images)).numpy()
  out = {'losses': np.array(losses), 'lrs': np.array(lrs), 'logits': logits}
  out.update({f'init/{k}': v for k, v in init.items()})
  out.update({f'final/{k}': v for k, v in _state(net).items()})
  return out


def main(argv: list[str]) -> None:
  name, dtype, steps, path = argv[1:]
  torch.set_num_threads(1)
  np.savez(path, **train(recipes.RECIPES[name], dtype, int(steps)))


if __name__ == '__main__':
  main(sys.argv)
