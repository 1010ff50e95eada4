"""Fault injection, for the tests that kill a real run with SIGKILL at a chosen point.

``PREDPORT_FAULT=<point>`` (or ``<point>:<n>``, the n-th time the point is reached) makes the process kill
itself there: ``unit`` (after a label row is written), ``forked`` (after the worker processes start),
``commit`` (before the output is swapped in), ``swapped`` (after the swap, before the old content is
removed), ``moved-old`` (between the two renames of a commit without the atomic swap), ``assembled`` (a one-file
output's rows in one file, in the staging directory), ``file-renamed`` (between renaming a one-file output and
its manifest into place). Unset, a point costs one comparison.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("PREDPORT_FAULT")
_NAME, _, _NTH = (_SPEC or "").partition(":")
_seen = 0


def point(name: str) -> None:
    global _seen
    if _SPEC is None or name != _NAME:
        return
    _seen += 1
    if _seen >= int(_NTH or 1):
        os.kill(os.getpid(), signal.SIGKILL)
