"""Benchmarks: run with ``make bench``. Never part of ``make test``; nothing here asserts a duration."""
