"""Judging rewards and generators: scorers, metrics, the confounder audit, reports."""
