"""The rules of prediction branch names."""

from __future__ import annotations

import re

from predport.core.problems import Location, Problem

BRANCH_RE = re.compile(r"[A-Za-z0-9._-]+")


def check_branch(name: str) -> list[Problem]:
    """Problems with a prediction branch name (case-sensitive; MAIN and consensus names refused)."""
    loc = Location("<command line>", record="--branch")
    if not BRANCH_RE.fullmatch(name):
        msg = f"branch name {name!r} may only contain A-Z a-z 0-9 . _ -"
    elif name == "main":
        msg = "branch 'main' holds ground truth; predictions must go to another branch"
    elif name.startswith("encord-"):
        msg = f"branch name {name!r} starts with 'encord-', which is reserved for consensus branches"
    else:
        return []
    return [Problem("branch.invalid", "error", msg, loc)]
