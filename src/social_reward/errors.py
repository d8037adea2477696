"""The project's user-facing errors share one base class.

`social-reward` turns any `SocialRewardError` into one line, `error: <message>`, and exit
status 1 (cli.py, in one place). The message says which file, field and rule, with an
example where one helps; anything else that escapes is a bug and keeps its traceback.
Each error lives beside the code that raises it and subclasses this one (and, where callers
catch it as such, the built-in error it refines).
"""


class SocialRewardError(Exception):
    """An error a user can act on: bad input, a missing file, a failed gate."""


class GateFailed(SocialRewardError, RuntimeError):
    """A gate stage found data it must not pass on (too much quarantine, too much drift)."""
