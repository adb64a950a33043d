"""PyTorch interop: reading checkpoints, mapping weights onto ours, initialising from them."""
