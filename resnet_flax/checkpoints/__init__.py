"""Checkpoints: saving and restoring runs with orbax, resuming, and restoring a run for evaluation."""
