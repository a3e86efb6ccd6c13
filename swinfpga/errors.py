"""The one error base of swinfpga.

Every problem a user can fix (a bad file, key, argument, layer or design) raises a subclass of
:class:`SwinfpgaError`; the CLI prints its message and exits with code 2.  Anything else is a bug.
Messages name the file / key / layer / argument and say how to fix it.
"""

from __future__ import annotations


class SwinfpgaError(Exception):
    """A problem the user can fix; the message names what is wrong and the fix."""


__all__ = ["SwinfpgaError"]
