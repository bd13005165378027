"""The benchmark suite of lightning_hpo: its samplers against Optuna, Hyperopt and random search.

Run it with ``python -m benchmarks`` (or ``make bench`` / ``make bench-quick``); see README.md.
"""
