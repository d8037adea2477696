"""Typed configuration: one module per section of params.yaml (`config/<section>.py`).

A stage imports only its own sections, so DVC reruns only it when their defaults change;
`config.params` assembles every section, for commands that need the whole file.
"""
