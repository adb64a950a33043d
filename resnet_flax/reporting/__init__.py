"""Reporting: metrics logs, TensorBoard, progress lines, plots and the final summary."""
