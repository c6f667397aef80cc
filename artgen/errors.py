"""The one exception type users see: a message naming the problem and the fix.

The CLI prints it as a single line and exits with status 2; library callers catch it.
"""


class ArtgenError(Exception):
    """Bad input or a missing prerequisite. `str(err)` is the whole one-line message."""

    exit_code = 2
