"""Benchmarks: functions that measure and return numbers; the CLI prints them."""
