"""Per-stage output shapes, parameter count and multiply-adds per image, without running the model."""

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Summary:
  params: int  # learnable (BN scale/bias included, running statistics excluded)
  macs: int  # multiply-adds of convs and dense layers for one image (the papers' convention)
  outputs: tuple[tuple[str, tuple[int, ...]], ...]  # (stem / stage / head, output shape) in order

  def table(self, title: str) -> str:
    rows = [f'{title}', *(f'  {name:<10} {"x".join(map(str, shape))}' for name, shape in self.outputs),
            f'  params     {self.params:,}', f'  MACs/image {self.macs / 1e6:,.2f} M']
    return '\n'.join(rows)


def summarize(model: nn.Module, image_shape: tuple[int, int, int]) -> Summary:
  """Traces `model.init` on one image of `image_shape` (HWC) abstractly; nothing is computed."""
  if getattr(model, 'scan_blocks', False):  # a scanned block is traced once; count every block
    model = model.clone(scan_blocks=False)
  macs, outputs = [0], {}

  def record(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    module = context.module
    if context.method_name != '__call__':
      return out
    if isinstance(module, (nn.Conv, nn.Dense)):
      kernel = module.variables['params']['kernel']
      macs[0] += math.prod(out.shape[1:-1]) * kernel.size
    if len(module.scope.path) == 1:  # a direct child of the model: stem, block, head
      outputs[_stage_of(module.scope.path[0])] = tuple(out.shape[1:])
    return out

  def init():
    with nn.intercept_methods(record):
      return model.init({'params': jax.random.key(0), 'dropout': jax.random.key(0)},
                        jnp.zeros((1, *image_shape)), train=False)

  variables = jax.eval_shape(init)
  params = sum(x.size for x in jax.tree.leaves(variables['params']))
  return Summary(params, macs[0], tuple(outputs.items()))


def _stage_of(child: str) -> str:
  """'stage2_block3' -> 'stage2': a stage's shape is that of its last block."""
  return child.split('_block')[0]
