"""The Keras lesson's ResNet-18/34 (tutorial seed 004, "2.1 Practice: BasicBlock, ResNet",
resnet.py), as printed but for its typos: `__int__` for `__init__`, `stride` for `strides`, the
`downsample` branch's indentation, `self.nn.relu` (here the block's own ReLU) and `layer.Dense`.

`variables(model)` names its weights as ours ('stage2_block1/conv1/kernel', Keras's HWIO and
(in, out) layouts are ours), so that fidelity/names.py reads them with the 'keras' layout.
"""

import keras
from keras import Sequential, layers


class BasicBlock(layers.Layer):

  def __init__(self, filter_num, strides=1, **kwargs):
    super().__init__(**kwargs)
    self.conv1 = layers.Conv2D(filter_num, (3, 3), strides=strides, padding='same')
    self.bn1 = layers.BatchNormalization()
    self.relu = layers.Activation('relu')
    self.conv2 = layers.Conv2D(filter_num, (3, 3), strides=1, padding='same')
    self.bn2 = layers.BatchNormalization()
    if strides != 1:
      self.downsample = Sequential()
      self.downsample.add(layers.Conv2D(filter_num, (1, 1), strides=strides))
    else:
      self.downsample = lambda x: x

  def call(self, inputs, training=None):
    out = self.conv1(inputs)
    out = self.bn1(out)
    out = self.relu(out)
    out = self.conv2(out)
    out = self.bn2(out)
    identity = self.downsample(inputs)
    output = layers.add([out, identity])
    return self.relu(output)


class ResNet(keras.Model):

  def __init__(self, layer_dims, num_classes=100):
    super().__init__()
    self.stem = Sequential([layers.Conv2D(64, (3, 3), strides=(1, 1)),
                            layers.BatchNormalization(),
                            layers.Activation('relu'),
                            layers.MaxPooling2D(pool_size=(2, 2), strides=(1, 1),
                                                padding='same')])
    self.layer1 = self.build_resblock(64, layer_dims[0])
    self.layer2 = self.build_resblock(128, layer_dims[1], strides=2)
    self.layer3 = self.build_resblock(256, layer_dims[2], strides=2)
    self.layer4 = self.build_resblock(512, layer_dims[3], strides=2)
    self.avgpool = layers.GlobalAveragePooling2D()
    self.fc = layers.Dense(num_classes)

  def call(self, inputs, training=None):
    x = self.stem(inputs)
    x = self.layer1(x)
    x = self.layer2(x)
    x = self.layer3(x)
    x = self.layer4(x)
    x = self.avgpool(x)
    return self.fc(x)

  def build_resblock(self, filter_num, blocks, strides=1):
    res_blocks = Sequential()
    res_blocks.add(BasicBlock(filter_num, strides))
    for _ in range(1, blocks):
      res_blocks.add(BasicBlock(filter_num, strides=1))
    return res_blocks


NETS = {'keras_resnet18': lambda n: ResNet([2, 2, 2, 2], n),
        'keras_resnet34': lambda n: ResNet([3, 4, 6, 3], n)}


_OURS = (('kernel', 'params/{}/kernel'), ('bias', 'params/{}/bias'), ('gamma', 'params/{}/scale'),
         ('beta', 'params/{}/bias'), ('moving_mean', 'batch_stats/{}/mean'),
         ('moving_variance', 'batch_stats/{}/var'))


def _named(layer, path: str) -> dict:
  return {ours.format(path): getattr(layer, name) for name, ours in _OURS
          if getattr(layer, name, None) is not None}


def variables(model: ResNet) -> dict:
  """{our flattened variable path ('params/stem/conv/kernel'): the Keras variable}."""
  out = {**_named(model.stem.layers[0], 'stem/conv'), **_named(model.stem.layers[1], 'stem/bn'),
         **_named(model.fc, 'head')}
  for i, stage in enumerate((model.layer1, model.layer2, model.layer3, model.layer4), 1):
    for j, block in enumerate(stage.layers, 1):
      for part in ('conv1', 'bn1', 'conv2', 'bn2'):
        out.update(_named(getattr(block, part), f'stage{i}_block{j}/{part}'))
      if isinstance(block.downsample, Sequential):
        out.update(_named(block.downsample.layers[0], f'stage{i}_block{j}/shortcut/conv'))
  return out
