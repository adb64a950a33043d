"""Starting a run from a PyTorch checkpoint (config.model.init_from): fine-tuning."""

import flax.linen as nn
import ml_collections

from resnet_flax.models import scan_layout

from resnet_flax.pytorch import from_pytorch
from resnet_flax.training.train_state import TrainState, with_ema


def init_from_pytorch(state: TrainState, model: nn.Module,
                       cfg: ml_collections.ConfigDict) -> TrainState:
  """`state` with params and BN statistics from a PyTorch checkpoint (the head kept if asked)."""
  own = {'params': state.params, 'batch_stats': state.batch_stats}
  if model.scan_blocks:  # PyTorch layouts are unrolled
    own = scan_layout.to_unscanned(own, model.stage_sizes)
  variables = from_pytorch.load_pytorch_weights(cfg.init_from, own,
                                                reinit_head=cfg.init_reinit_head,
                                                init_variables=own)
  if model.scan_blocks:
    variables = scan_layout.to_scanned(variables, model.stage_sizes)
  state = state.replace(params=variables['params'], batch_stats=variables.get('batch_stats', {}))
  return with_ema(state) if state.ema is not None else state
