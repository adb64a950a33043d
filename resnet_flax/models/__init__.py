"""The model zoo: `create_model(name, num_classes=...)` and `list_models()`."""

from resnet_flax.models import cifar_resnet  # noqa: F401  (registers the models)
from resnet_flax.models.registry import create_model, list_models
from resnet_flax.models.resnet import ResNet

__all__ = ['ResNet', 'create_model', 'list_models']
