"""The one exception type for problems a user can cause and fix."""


class OsmaError(Exception):
    """A user-facing error: bad input, missing file, unknown name.

    The CLI prints its message as ``error: <message>`` and exits with status 2, without a
    traceback. Code raises it with a message that names the thing at fault and the fix.
    """


class Interrupted(OsmaError):
    """The user interrupted a command (Ctrl-C); the message says what was kept and how to resume.

    The CLI prints it as ``error: <message>`` and exits with status 130.
    """
