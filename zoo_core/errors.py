"""The one exception a user can cause: the CLI prints its message as one line and exits non-zero."""


class ZooError(Exception):
    """A problem with the user's input or environment, with a message that says what to do."""
