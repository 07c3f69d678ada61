"""Benchmarks for sparsetrain against its peers (scikit-learn, PyTorch, MXNet 1.9.1, Vowpal Wabbit).

Entry point: ``python -m benchmarks.run [--quick] [--only NAME ...] [--out benchmarks/RESULTS.md]``.
See benchmarks/README.md.
"""
