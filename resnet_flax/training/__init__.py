"""Training: the loop, its step, the optimizer and how it runs on many devices."""
