"""Kernel release ordering, the way package managers compare version strings (rpmvercmp-like)."""

from __future__ import annotations

import re

_PART = re.compile(r"\d+|[A-Za-z]+")


def version_key(release: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key: numbers compare numerically and above letters ('5.10' > '5.9', '6.1' > '6.1-rc1')."""
    key: list[tuple[int, int | str]] = []
    for part in _PART.findall(release):
        if part.isdigit():
            key.append((2, int(part)))
        elif part.lower() == "rc":
            key.append((0, part))  # a release candidate sorts before its release
        else:
            key.append((1, part))
    key.append((1, ""))  # end marker: '6.1.0' sorts after '6.1.0-rc1' and before '6.1.0-1'
    return tuple(key)


def newest(releases: list[str]) -> str | None:
    return max(releases, key=version_key) if releases else None
