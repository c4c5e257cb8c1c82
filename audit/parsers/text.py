"""Lines of a file as the programs that read it see them.

The kernel's ``seq_file`` output (``/proc``, ``/sys``), libc's line readers (``getmntent``,
``fgets``/``getline``) and systemd's ``read_line`` end a line at a line feed and nowhere else.
``str.splitlines`` also splits at vertical tab, form feed, \\x1c-\\x1e, NEL and U+2028/9: a value
holding one of them would become two lines here and one line there (FIELD-NOTES: parse what the
reader reads). A final line feed ends the last line; it does not start an empty one.
"""

from __future__ import annotations


def lines(text: str) -> list[str]:
    """``text`` split at ``\\n`` only; a carriage return before it is kept (callers strip)."""
    parts = text.split("\n")
    if parts[-1] == "":
        parts.pop()
    return parts
