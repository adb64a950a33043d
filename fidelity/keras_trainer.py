"""The Keras reference: `python -m fidelity.keras_trainer RECIPE DTYPE STEPS OUT.npz` under an
interpreter with TensorFlow's Keras (our .venv has it, for tfds). Writes what torch_trainer.py
writes: initial variables (`init/<our path>`), per-step losses and learning rates, final
variables (`final/<our path>`) and eval-mode logits.

The loop is the Keras lesson's (tutorial seed 004, "2.2 Practice: ResNet18", main()):
GradientTape, model(x), one-hot categorical cross-entropy from logits, mean, tape.gradient,
Adam(lr=1e-3).apply_gradients. One change: the lesson calls `model(x)`, which in Keras runs
BatchNorm in inference mode (its moving statistics, never updated); here `model(x,
training=True)`, what its BatchNorms are there for (docs/fidelity.md).
"""

import os

os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import sys  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from fidelity import keras_nets, recipes  # noqa: E402


def _net(recipe: recipes.Recipe, floatx: str) -> keras_nets.ResNet:
  keras.config.set_floatx(floatx)
  keras.config.set_dtype_policy(floatx)  # the layers' compute and variable dtype
  net = keras_nets.NETS[recipe.net](recipe.num_classes)
  shape = (1, recipe.image_size, recipe.image_size, recipe.channels)
  net(tf.zeros(shape, floatx), training=False)  # creates the variables (net.build would not)
  return net


def train(recipe: recipes.Recipe, dtype: str, steps: int) -> dict[str, np.ndarray]:
  keras.utils.set_random_seed(0)
  net = _net(recipe, 'float32')  # float32 init: exact in float64 too
  init = {k: v.numpy() for k, v in keras_nets.variables(net).items()}
  if dtype == 'float64':
    net = _net(recipe, 'float64')
    for key, variable in keras_nets.variables(net).items():
      variable.assign(init[key].astype(np.float64))
  optimizer = keras.optimizers.Adam(**recipe.optimizer)
  images, labels, eval_images = recipes.batches(recipe, steps)
  losses, lrs = [], []
  for i in range(steps):
    x, y = tf.constant(images[i], dtype), tf.constant(labels[i], tf.int32)
    lrs.append(float(optimizer.learning_rate.numpy()))
    with tf.GradientTape() as tape:
      logits = net(x, training=True)
      y_onehot = tf.one_hot(y, depth=recipe.num_classes, dtype=dtype)
      loss = keras.losses.categorical_crossentropy(y_onehot, logits, from_logits=True)
      loss = tf.reduce_mean(loss)
    grads = tape.gradient(loss, net.trainable_variables)
    optimizer.apply_gradients(zip(grads, net.trainable_variables))
    losses.append(float(loss.numpy()))
  logits = net(tf.constant(eval_images, dtype), training=False).numpy()
  out = {'losses': np.array(losses), 'lrs': np.array(lrs), 'logits': logits}
  out.update({f'init/{k}': v for k, v in init.items()})
  out.update({f'final/{k}': v.numpy() for k, v in keras_nets.variables(net).items()})
  return out


def main(argv: list[str]) -> None:
  name, dtype, steps, path = argv[1:]
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  np.savez(path, **train(recipes.RECIPES[name], dtype, int(steps)))


if __name__ == '__main__':
  main(sys.argv)
