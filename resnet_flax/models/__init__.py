"""The model zoo: `create_model(name, num_classes=...)` and `list_models()`."""

# Importing a family module registers its models.
from resnet_flax.models import (cifar_resnet, preact_resnet, resnext,  # noqa: F401
                                torchvision_resnet, tutorial_nets, wide_resnet)
from resnet_flax.models.registry import create_model, list_models
from resnet_flax.models.resnet import ResNet
from resnet_flax.models.summary import Summary, summarize

__all__ = ['ResNet', 'Summary', 'create_model', 'list_models', 'summarize']
