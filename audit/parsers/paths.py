"""Paths inside an audited root, folded lexically: the root is ``/`` and ``..`` stops there."""

from __future__ import annotations


def normalize(path: str) -> str:
    """An absolute, slash-separated path inside the root with ``.``/``..``/``//`` folded lexically."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)
