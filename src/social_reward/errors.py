"""Errors shared by the stages."""


class GateFailed(RuntimeError):
    """A gate stage found data it must not pass on (too much quarantine, too much drift)."""
