"""Reading the boot files of an audited root: errors become problems, GRUB paths map into the root."""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Mapping
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


class _Recording:
    """A GrubFiles that answers through ``files`` and keeps each question with its answer (a text
    as its digest), so a run can be reused where every answer is the same."""

    def __init__(self, files: Any) -> None:
        self.files = files
        self.log: list[tuple[str, str, bool, object]] = []

    def exists(self, path: str, *, nonempty: bool = False) -> bool | None:
        answer = self.files.exists(path, nonempty=nonempty)
        self.log.append(("exists", path, nonempty, answer))
        return answer  # type: ignore[no-any-return]

    def read(self, path: str) -> tuple[str, str] | None:
        answer = self.files.read(path)
        self.log.append(("read", path, False, _digest(answer)))
        return answer  # type: ignore[no-any-return]


def _digest(answer: tuple[str, str] | None) -> tuple[str, bytes] | None:
    if answer is None:
        return None
    label, text = answer
    import hashlib  # only where a script runs a second time (a fleet): not a cost of every run

    return label, hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _same_answers(files: Any, log: list[tuple[str, str, bool, object]]) -> bool:
    """Whether ``files`` answers every question of ``log`` as before, asked in the same order (the
    evaluator is deterministic: with the same answers it asks the same next question)."""
    for kind, path, nonempty, answer in log:
        got = files.exists(path, nonempty=nonempty) if kind == "exists" else _digest(files.read(path))
        if got != answer:
            return False
    return True


#: Runs kept per (script, label, platform, preset variables): hosts of a fleet that share a grub.cfg
#: mostly differ in a grubenv or two; beyond this many variants the oldest goes.
RUN_VARIANTS = 8
_runs: dict[tuple[int, str, str | None, tuple[tuple[str, str], ...]], list[tuple[Any, list, Any]]] = {}


def run_script(script: Any, *, label: str, files: Any, platform: str | None,
               env: Mapping[str, str] | None = None) -> Any:
    """``run_grub_script`` of a script from ``parse_script``, reused when the same script ran before
    (in this process) with the same label, platform and preset variables and every file it looked at
    is the same: the evaluation depends on nothing else. A fleet run evaluates each distinct boot
    configuration once per worker; the files are still read, to compare them."""
    from audit.parsers.grub import run_grub_script

    key = (id(script), label, platform, tuple(sorted((env or {}).items())))
    variants = _runs.get(key)
    if variants is None:  # the first run of it is not recorded: a one-host run never needs the memo
        _runs[key] = []
        if len(_runs) > 256:
            _runs.pop(next(iter(_runs)))
        return run_grub_script(script, label=label, files=files, platform=platform, env=env)
    for kept_script, log, run in variants:
        if kept_script is script and _same_answers(files, log):
            return run
    recording = _Recording(files)
    run = run_grub_script(script, label=label, files=recording, platform=platform, env=env)
    variants.append((script, recording.log, run))  # the script is kept: its id is not reused meanwhile
    del variants[:-RUN_VARIANTS]
    _runs[key] = variants
    if len(_runs) > 256:
        _runs.pop(next(iter(_runs)))
    return run


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
