"""Compiled ops outside XLA: oneDNN convolutions for the CPU (`onednn`), chosen by `backend`."""
