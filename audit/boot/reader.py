"""Reading the boot files of an audited root: errors become problems, GRUB paths map into the root."""

from __future__ import annotations

import functools
import posixpath
import re
from typing import Any

from audit.errors import FactError, FactUnavailable
from audit.host.fs import FileSource, normalize


def decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


#: A grub.cfg this large or smaller is kept parsed (its syntax tree is tuples only: immutable), so
#: a fleet run whose hosts share a generated grub.cfg parses it once per worker process.
CACHED_SCRIPT_BYTES = 1 << 20


@functools.lru_cache(maxsize=64)
def _parse_cached(text: str) -> Any:
    from audit.parsers.grub import parse_grub_script

    return parse_grub_script(text)


def parse_script(text: str) -> Any:
    """``parse_grub_script(text)``, parsed once per process for texts up to CACHED_SCRIPT_BYTES (a
    failed parse raises every time: exceptions are not cached)."""
    if len(text) <= CACHED_SCRIPT_BYTES:
        return _parse_cached(text)
    from audit.parsers.grub import parse_grub_script

    return parse_grub_script(text)


class Reader:
    """Reads through the FileSource, turning errors into problems."""

    def __init__(self, fs: FileSource) -> None:
        self.fs = fs
        self.problems: list[str] = []

    def text(self, path: str) -> str | None:
        try:
            return decode(self.fs.read_bytes(path))
        except FactUnavailable:
            return None
        except FactError as exc:
            self.problems.append(str(exc))
            return None

    def is_file(self, path: str) -> bool:
        return self.fs.kind(path) == "file"

    def listdir(self, path: str) -> list[str]:
        try:
            return self.fs.listdir(path)
        except FactUnavailable:
            return []
        except FactError as exc:
            self.problems.append(str(exc))
            return []

    def real_path(self, path: str) -> str:
        """``path`` with symlinks followed (for messages and sibling files), inside the root."""
        current = normalize(path)
        for _ in range(16):
            target = self.fs.readlink(current)
            if target is None:
                break
            base = "/" if target.startswith("/") else posixpath.dirname(current)
            current = normalize(posixpath.join(base, target))
        return current


def grub_candidates(path: str) -> list[str]:
    """Root paths a GRUB path may designate: the device part is dropped and /boot may be its own
    file system (``($dev)/grub2/grub.cfg`` is ``/boot/grub2/grub.cfg``), as may the ESP."""
    p = re.sub(r"^\([^)]*\)", "", path.strip())
    p = normalize(p)
    out = [p]
    if not p.startswith("/boot/"):
        out.append(normalize("/boot" + p))
        out.append(normalize("/boot/efi" + p))
    return out


class GrubFilesInRoot:
    """GrubFiles over the audited root."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader

    def exists(self, path: str, *, nonempty: bool = False) -> bool | None:
        for cand in grub_candidates(path):
            if self.reader.is_file(cand):
                if not nonempty:
                    return True
                text = self.reader.text(cand)
                return None if text is None else bool(text)
        return False

    def read(self, path: str) -> tuple[str, str] | None:
        for cand in grub_candidates(path):
            if self.reader.is_file(cand):
                text = self.reader.text(cand)
                return None if text is None else (cand, text)
        return None
