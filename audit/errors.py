"""Exceptions that carry 'cannot know here' and 'malformed input' from the host layer to the engine."""

from __future__ import annotations


class HostauditError(Exception):
    """Base of hostaudit's own errors."""


class UsageError(HostauditError):
    """Bad options or input given by the user: one clear line, exit 2, nothing audited."""


class FactUnavailable(HostauditError):
    """A fact cannot be known under this root (file absent, runtime fact on an image).

    The engine turns it into ``skip`` with this message as the reason.
    """

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(message)
        self.source = source


class FactError(HostauditError):
    """A fact's source exists but cannot be used: malformed, unreadable, not a regular file.

    The engine turns it into ``error``; the message names the file (and line) and the problem.
    """

    def __init__(self, source: str, problem: str, *, line: int | None = None) -> None:
        if len(problem) > 240:  # a malformed file can be anything: quote only the start of it
            problem = problem[:237] + "..."
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.line = line
        self.problem = problem


def fresh(exc: BaseException) -> BaseException:
    """``exc`` again as a new object with the same arguments and attributes, to raise a kept
    exception once more: raising the kept one would attach the raiser's frames to it and so, through
    them, whatever keeps it (a host's fact cache: a reference cycle per raise, freed only by the
    garbage collector, some thousand objects per host in a fleet)."""
    new = type(exc).__new__(type(exc), *exc.args)
    new.__dict__.update(exc.__dict__)
    return new


class ParseError(ValueError):
    """Raised by pure parsers (they know no file name); the host layer adds the source."""

    def __init__(self, problem: str, *, line: int | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line
