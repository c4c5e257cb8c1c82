"""The auditor on the machine running the tests, checked against what /proc and /sys say directly."""

from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path

import pytest

from audit.engine import run_audit
from audit.host.core import Host
from audit.model import Status, TargetMode
from audit.plugins import make_plugins

pytestmark = pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="needs a Linux /proc")


@pytest.fixture(scope="module")
def report():
    return run_audit(make_plugins(entry_points=False), Host.live())


def _flags() -> set[str]:
    sets = [set(line.split(":", 1)[1].split()) for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("flags")]
    return set.intersection(*sets) if sets else set()


def _status(report, check_id):
    return next(r for r in report.results if r.id == check_id).status


def test_live_target(report):
    assert report.target.mode is TargetMode.LIVE
    assert report.target.kernel_release == os.uname().release


def test_live_cpu_checks_match_proc(report):
    flags = _flags()
    assert (_status(report, "cpu.virtualization") is Status.PASS) == bool({"vmx", "svm"} & flags)
    assert (_status(report, "cpu.aes") is Status.PASS) == ("aes" in flags)
    assert (_status(report, "cpu.avx") is Status.PASS) == ({"avx", "xsave"} <= flags)


def test_live_dev_kvm_matches_stat(report):
    try:
        is_char = stat.S_ISCHR(os.stat("/dev/kvm").st_mode)
    except FileNotFoundError:
        is_char = False
    assert (_status(report, "kvm.device") is Status.PASS) == is_char


def test_live_kernel_config_matches(report):
    gz = Path("/proc/config.gz")
    boot = Path(f"/boot/config-{os.uname().release}")
    if gz.exists():
        text = gzip.decompress(gz.read_bytes()).decode()
    elif boot.exists():
        text = boot.read_text()
    else:
        assert _status(report, "kernel.hugetlbfs") is Status.SKIP
        return
    ok = "CONFIG_HUGETLBFS=y" in text.splitlines() and "CONFIG_HUGETLB_PAGE=y" in text.splitlines()
    assert (_status(report, "kernel.hugetlbfs") is Status.PASS) == ok
    ksm = "CONFIG_KSM=y" in text.splitlines()
    assert (_status(report, "kernel.ksm") is Status.PASS) == ksm


def test_live_no_check_errored(report):
    errors = [(r.id, r.outcome.message) for r in report.results if r.status is Status.ERROR]
    assert not errors
