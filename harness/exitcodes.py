"""The exit statuses of every `harness` command, in one place.

0  valid: the checked history has no violations (or: the command did its job)
1  invalid: violations found; for `harness suite`, a case failed its expectations;
   for `harness image show`, the node image is missing (a "no" answer, like `test`)
2  anything that stopped the command from answering: bad input or usage, a verdict
   of "unknown", a failure to run
"""

from __future__ import annotations

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_ERROR = 2

__all__ = ["EXIT_ERROR", "EXIT_INVALID", "EXIT_VALID"]
