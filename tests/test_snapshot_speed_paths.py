"""The shortcuts of a snapshot's path lookups (a path it holds, a directory it has entries under, a
name missing from a directory it holds) answer exactly what the walk component by component does,
for every path of real snapshots and of odd ones (links, absent and error entries, listings)."""

from __future__ import annotations

import pytest

from audit.errors import FactError, FactUnavailable
from audit.host.snapshot import SnapshotFS, parse_snapshot
from tests.test_fleet import capture, deb_tree

ODD = (b"hostaudit-snapshot 1\nmeta mode live\n"
       b"dir /etc\nname hostname\nname gone\nname sub\n"
       b"file /etc/hostname b64\naG9zdAo=\n.\n"
       b"absent /etc/gone\ndir /etc/sub -\n"
       b"link /lib usr/lib\ndir /usr/lib\nname modules\n"
       b"link /etc/alt /usr/lib\nlink /loop /loop\nlink /up ../../etc\n"
       b"kind /dev/kvm char 0660 0 36\nfile /sys/bad failed\nabsent /proc\n"
       b"end\n")


def _answer(fs: SnapshotFS, path: str, follow: bool) -> object:
    try:
        return fs.resolve(path, follow_last=follow)
    except (FactUnavailable, FactError) as exc:
        return type(exc).__name__, str(exc)


def _walked(fs: SnapshotFS, path: str, follow: bool) -> object:
    try:
        return fs._walk(path, follow_last=follow)
    except (FactUnavailable, FactError) as exc:
        return type(exc).__name__, str(exc)


def _probes(fs: SnapshotFS) -> set[str]:
    entries = fs.snap.entries
    out = {"/", "/nope", "/nope/deeper", "/etc/./hostname", "/etc//hostname", "/etc/../etc/hostname"}
    for path in list(entries):
        out |= {path, path + "/x", path + "/x/y", path.rsplit("/", 1)[0] + "/missing"}
        e = entries[path]
        out |= {f"{path}/{n}" for n in e.names or ()}
    return out


@pytest.mark.parametrize("partial", [False, True], ids=["full", "partial"])
def test_shortcuts_answer_what_the_walk_answers(tmp_path, partial: bool) -> None:
    blobs = [ODD, capture(tmp_path / "deb", deb_tree("deb-a"), tmp_path / "deb.json").read_bytes()]
    for blob in blobs:
        fs = SnapshotFS(parse_snapshot(blob, partial=partial), name="x")
        ref = SnapshotFS(parse_snapshot(blob, partial=partial), name="x")
        for path in sorted(_probes(ref)):
            for follow in (True, False):
                assert _answer(fs, path, follow) == _walked(ref, path, follow), (path, follow)
