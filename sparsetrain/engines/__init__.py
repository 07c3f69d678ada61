"""Execution engines beyond the graph interpreter."""
