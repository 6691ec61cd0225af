"""Benchmark scripts that print figures (run them as ``.venv/bin/python bench/NAME.py``)."""
