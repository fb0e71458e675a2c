"""Benchmarks of simvp-nowcast (run as ``python -m benchmarks.<name>``)."""
