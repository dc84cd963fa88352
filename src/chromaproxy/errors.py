"""The one exception type for mistakes a user can fix.

The CLI prints a ``UserError`` as a single line (no traceback), so its message must name the problem and
the fix. Anything else that escapes is a bug in chromaproxy and keeps its traceback.
"""


class UserError(Exception):
    """A problem in the user's input (path, file, config, checkpoint) with a one-line explanation."""
