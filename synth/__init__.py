"""Synthetic news and corruptions for tests and benchmarks: seeded, no external data, stdlib only."""
