"""Garbage in every file a check reads: each check still ends in a result naming the file, never a
crash, never a pass built on junk."""

from __future__ import annotations

import random
import re

import pytest

from audit.engine import run_audit
from audit.host.core import Host
from audit.model import Status
from audit.plugins import make_plugins

PATHS = [
    "proc/cpuinfo", "proc/meminfo", "proc/cmdline", "proc/mounts", "proc/swaps", "proc/crypto", "proc/modules",
    "proc/sys/kernel/osrelease", "sys/kernel/mm/transparent_hugepage/enabled", "sys/kernel/mm/ksm/run",
    "sys/kernel/mm/ksm/pages_sharing", "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
    "boot/grub/grub.cfg", "boot/grub2/grub.cfg", "boot/grub2/grubenv", "boot/loader/entries/a.conf",
    "boot/grub/grub.conf", "etc/default/grub", "etc/fstab", "etc/sysctl.conf", "etc/os-release", "boot/config-1.0",
    "etc/ksmtuned.conf", "etc/kernel/cmdline", "etc/systemd/system/dev-hugepages.mount", "etc/sysctl.d/x.conf",
    "dev/kvm", "sys/kernel/iommu_groups/0", "lib/modules/1.0/modules.builtin",
]


@pytest.mark.parametrize("seed", range(6))
def test_garbage_everywhere_never_crashes(make_root, seed):
    rng = random.Random(seed)
    spec = {p: bytes(rng.randrange(256) for _ in range(rng.randrange(0, 800))) for p in PATHS}
    report = run_audit(make_plugins(entry_points=False), Host.from_root(str(make_root(spec))))
    assert report.results
    for r in report.results:
        assert "check crashed" not in r.outcome.message, (r.id, r.outcome.message)
        if r.status is Status.ERROR:
            assert re.search(r"(^|\s)/[a-z]", r.outcome.message), (r.id, r.outcome.message)  # names the file
            assert len(r.outcome.message) < 400


@pytest.mark.parametrize("seed", range(3))
def test_printable_garbage_never_crashes(make_root, seed):
    rng = random.Random(100 + seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 =:\"'[]{}$#-_./\n\t,"
    spec = {p: "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 800))) for p in PATHS}
    report = run_audit(make_plugins(entry_points=False), Host.from_root(str(make_root(spec))))
    assert all("check crashed" not in r.outcome.message for r in report.results), [
        (r.id, r.outcome.message) for r in report.results if "check crashed" in r.outcome.message]
