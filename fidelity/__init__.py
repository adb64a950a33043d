"""Training parity with the reference trainers: our train step against theirs, step for step.

`python -m fidelity` (`make parity`) runs each recipe of `recipes.py` twice from the same
initial weights and batches: in PyTorch (`torch_trainer.py`, run with the interpreter that has
torch, `.venv-bench`) or in Keras (`keras_trainer.py`, with TensorFlow's Keras) and through our own config, model, optimizer and train step (`ours.py`),
in float64 and float32, and prints how far apart they end (docs/fidelity.md). This package
imports neither jax nor torch nor keras at its top: each side imports only its own.
"""
