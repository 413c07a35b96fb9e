"""The one family of errors a user can fix: bad input, a missing file or folder, a wrong flag.

Every command prints a ``UserError`` as one line (``prog: error: message``) and exits 1; any other
exception is a bug in this package (or in a plug-in) and keeps its traceback. Subclasses keep the
builtin base they had before (``ValueError``, ``LookupError``...), so code that caught those still works.
A message names the file or flag and says what to do about it.
"""
from __future__ import annotations


class UserError(Exception):
    """Base of every error caused by what the user gave us, never by a bug."""


class UsageError(UserError, ValueError):
    """A command-line flag or argument has a value the command cannot use."""
