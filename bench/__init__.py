"""Benchmarks: each prints a table and, on its last line, its figures as key=value pairs.

Run one with `.venv/bin/python -m bench.<name>`, all with `make bench`. Every figure is a
difference or ratio against a baseline measured in the same run, on this machine.
"""
