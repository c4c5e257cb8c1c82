"""Lines end at a line feed only, as the kernel's seq_file output, libc's line readers and systemd read
them: a form feed, vertical tab, NEL or U+2028 inside a value never starts a new line here."""

from __future__ import annotations

import pytest

from audit.parsers.memory import parse_meminfo
from audit.parsers.modules import parse_proc_modules
from audit.parsers.mounts import parse_fstab, parse_mounts
from audit.parsers.osrelease import parse_os_release
from audit.parsers.text import lines

ODD = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


def test_lines_split_at_line_feeds_only():
    assert lines("a\nb\n") == ["a", "b"]
    assert lines("a\nb") == ["a", "b"]
    assert lines("a\n\nb\n") == ["a", "", "b"]
    assert lines("") == [] and lines("\n") == [""]
    for ch in ODD:
        assert lines(f"x{ch}y\nz\n") == [f"x{ch}y", "z"]


@pytest.mark.parametrize("ch", ODD)
def test_a_mount_point_holding_an_odd_character_is_one_mount(ch):
    text = f"tmpfs /mnt/a{ch}b tmpfs rw 0 0\nhugetlbfs /dev/hugepages hugetlbfs rw,pagesize=2M 0 0\n"
    mounts = parse_mounts(text)
    assert [m.target for m in mounts] == [f"/mnt/a{ch}b", "/dev/hugepages"]
    assert [m.line for m in mounts] == [1, 2]
    assert [e.file for e in parse_fstab(text)] == [f"/mnt/a{ch}b", "/dev/hugepages"]


def test_line_numbers_count_line_feeds_only():
    text = "MemTotal: 100 kB\x0c\nHugePages_Total: 4\nHugepagesize: 2048 kB\n"
    info = parse_meminfo(text)
    assert info.hugepages_total == 4 and info.hugepagesize == 2048 * 1024
    assert parse_proc_modules("kvm 1 0 - Live 0x0\x0b\nkvm_intel 2 0 - Live 0x0\n") >= {"kvm_intel"}
    assert parse_os_release('ID=debian\x85\nNAME="Debian"\n').values["NAME"] == "Debian"
