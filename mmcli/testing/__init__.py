"""Tiny deterministic data for tests and examples."""
