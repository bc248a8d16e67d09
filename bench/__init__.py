"""Benchmarks: load scripts that print figures with the machine they ran on (see README.md).

A package so the scripts can share the load client (`python -m bench.bench_stream`).
"""
