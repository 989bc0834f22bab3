"""Errors the stack reports to its user: each message says what is wrong and what to do."""


class StackError(Exception):
    """A stack operation could not be done; the message is meant for the user."""


class PortTaken(StackError):
    """A port the stack needs is held by a process the stack did not start."""


class MissingTool(StackError):
    """A program the stack needs (Java, Maven, PostgreSQL) is not installed."""


class DownloadFailed(StackError):
    """Maven could not resolve the Kafka jars (Maven Central unreachable, for instance)."""


class StartFailed(StackError):
    """A process started but did not become ready."""


class UnsafeFolder(StackError):
    """A folder the stack would write into or delete from could be another user's doing."""
