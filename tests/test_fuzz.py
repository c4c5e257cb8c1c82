"""Every parser under ``hypothesis``: arbitrary text and bytes, and inputs shaped like the real files
(lines recombined from the real samples in tests/data, with their separators and fragments mutated).

Only the documented error may escape: ``ParseError`` from a pure parser, ``SnapshotError`` from the
snapshot loader, ``UsageError`` from the policy loader. Example counts are bounded so the normal suite
stays quick and deterministic (``derandomize``); ``HOSTAUDIT_FUZZ_EXAMPLES=5000`` runs a deep pass.

Work is tested for linearity by counting it, never by timing: the Python and C function calls a
parse makes (``sys.setprofile``) and its peak allocation (``tracemalloc``), at 1x and 4x the input.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.errors import ParseError, UsageError
from audit.host.snapshot import SnapshotError, parse_snapshot
from audit.parsers import cmdline, kconfig, memory, modules, mounts, osrelease, sysctl, systemd
from audit.parsers import cpuinfo as cpuinfo_parser
from audit.parsers.grub import (
    parse_bls_entry,
    parse_grub_script,
    parse_grubenv,
    parse_legacy_grub,
    parse_shell_vars,
    run_grub_script,
)
from audit.parsers.hugepages import parse_size
from audit.policy import Policy, _load_toml, apply
from tests.conftest import DATA
from tests.workcount import count_work

EXAMPLES = int(os.environ.get("HOSTAUDIT_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# -- the parsers and the real files their inputs are shaped like ------------------------------------

GRUB = DATA / "grub"


class _SelfOnly:
    """GRUB files: the script itself for any path, so ``source``/``configfile`` loops are exercised."""

    def __init__(self, text: str) -> None:
        self.text = text

    def exists(self, path: str, *, nonempty: bool = False) -> bool | None:
        return True

    def read(self, path: str) -> tuple[str, str] | None:
        return "/boot/grub/grub.cfg", self.text


def grub_run(text: str) -> Any:
    """Parse and run a grub.cfg the way the resolver does, sourcing itself wherever it sources."""
    return run_grub_script(parse_grub_script(text), label="/boot/grub/grub.cfg", files=_SelfOnly(text), platform="efi")


def grub_kernels(text: str) -> list[Any]:
    from audit.parsers.grub import entry_kernel

    run = grub_run(text)
    out = []
    for item in list(run.menu)[:50]:
        if hasattr(item, "body"):
            out.append(entry_kernel(item, env=run.env, files=_SelfOnly(text), platform="efi"))
    return out

TEXT_PARSERS: dict[str, tuple[Callable[[str], Any], list[Path]]] = {
    "meminfo": (memory.parse_meminfo, [DATA / "proc/this-vm/meminfo"]),
    "swaps": (memory.parse_swaps, [DATA / "proc/this-vm/swaps"]),
    "mounts": (mounts.parse_mounts, [DATA / "proc/this-vm/mounts"]),
    "mountinfo": (mounts.parse_mountinfo, [DATA / "proc/this-vm/mounts"]),
    "fstab": (mounts.parse_fstab, [DATA / "proc/this-vm/mounts"]),
    "kconfig": (kconfig.parse_kconfig, [DATA / "kconfig/debian12-config-6.1.0-47-arm64"]),
    "cmdline": (cmdline.tokenize, [DATA / "grub/rhel8-stig-etc-default-grub"]),
    "os-release": (osrelease.parse_os_release, []),
    "systemd unit": (systemd.parse_unit_file, []),
    "mount unit": (systemd.parse_mount_unit, []),
    "ksmtuned.conf": (systemd.parse_ksmtuned_conf, []),
    "proc/modules": (modules.parse_proc_modules, []),
    "modules.builtin": (modules.parse_modules_builtin, []),
    "proc/crypto": (modules.parse_proc_crypto, []),
    "thp setting": (memory.parse_thp_setting, []),
    "thp mode": (memory.parse_thp_mode, []),
    "ksm run": (memory.parse_ksm_run, []),
    "int file": (memory.parse_int_file, []),
    "hugepage size": (parse_size, []),
    "hugepage dir": (memory.parse_hugepage_dir_name, []),
    "cpuinfo": (cpuinfo_parser.parse_cpuinfo, [DATA / "cpuinfo/intel-xeon-gold-6132-skylake-sp.txt",
                                               DATA / "cpuinfo/arm64-pixel5-kryo4xx-biglittle-android.txt"]),
    "sysctl.conf": (sysctl.parse_sysctl_conf, []),
    "grub.cfg": (grub_run, [GRUB / "debian12-grub.cfg", GRUB / "el8-bls-grub.cfg",
                            GRUB / "insights-rhel8-blscfg-before-load_env-grub.cfg"]),
    "grub.cfg kernels": (grub_kernels, [GRUB / "ubuntu2204-cloudimg-grub.cfg", GRUB / "rhel72-grub.cfg"]),
    "grubenv": (parse_grubenv, [GRUB / "el8-grubenv", GRUB / "ubuntu2204-cloudimg-grubenv"]),
    "BLS entry": (parse_bls_entry, [GRUB / "insights-rhel8.4-4.18.0-305.el8.x86_64.conf"]),
    "legacy grub.conf": (parse_legacy_grub, [GRUB / "centos6-hugepages-grub.conf", GRUB / "rhel5-grub.conf",
                                             GRUB / "amzn1-menu.lst"]),
    "/etc/default/grub": (parse_shell_vars, [GRUB / "debian12-grub2-common-default-grub",
                                             GRUB / "proxmox-kvm-host-etc-default-grub"]),
}

#: Real-looking fragments for the files without a sample in tests/data: what each file is made of.
EXTRA_FRAGMENTS = [
    'NAME="Debian GNU/Linux"', "ID=debian", "VERSION_ID='12'", 'PRETTY_NAME="a \\"b\\" c"', "ID_LIKE=rhel fedora",
    "[Unit]", "[Mount]", "[Service]", "What=hugetlbfs", "Where=/dev/hugepages", "Options=pagesize=1G,mode=1770",
    "Type=hugetlbfs", "ExecStart=/usr/sbin/ksmtuned", "WantedBy=multi-user.target", "Key=a \\", "; comment",
    "KSM_MONITOR_INTERVAL=60", "KSM_NPAGES_MAX=1250", "# KSM_THRES_COEF=20", "kvm_intel 372736 0 - Live 0x0",
    "aesni_intel 393216 4 - Live", "name         : cbc(aes)", "driver       : cbc-aes-aesni",
    "module       : aesni_intel",
    "priority     : 400", "type         : skcipher", "always [madvise] never", "[always] madvise never", "1", "0", "2",
    "hugepages-1048576kB", "hugepages-2048kB", "2M", "1G", "0x10", "-1", "18446744073709551616",
    "HugePages_Total:      16", "Hugepagesize:    1048576 kB", "/dev/sda2 partition 8388604 0 -2",
    "hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=1024M 0 0",
    "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue",
    "hugepages=16 hugepagesz=1G default_hugepagesz=1G intel_iommu=on", 'GRUB_CMDLINE_LINUX="a=\\"b c\\" d"',
    "CONFIG_KVM=m", "# CONFIG_KSM is not set", '# Linux/x86 6.1.0 Kernel Configuration', "\\040", "\\011",
]


def _fragments(paths: list[Path]) -> list[str]:
    out = list(EXTRA_FRAGMENTS)
    for p in paths:
        out.extend(line for line in p.read_text(encoding="utf-8", errors="replace").splitlines()[:400] if line)
    return out


def shaped_text(paths: list[Path]) -> st.SearchStrategy[str]:
    """Lines from the real files, recombined, cut and spliced with arbitrary text and separators."""
    line = st.one_of(
        st.sampled_from(_fragments(paths)),
        st.builds(lambda a, b, cut: a[:cut] + b, st.sampled_from(_fragments(paths)), st.text(max_size=12),
                  st.integers(0, 80)),
        st.text(alphabet=st.sampled_from(list(" \t=:#;\"'\\[]{}$,-/\0\x7f\ufffd\u2028é0123456789abcKMG")), max_size=40),
    )
    sep = st.sampled_from(["\n", "\n", "\n", "\r\n", "\r", "\n\n", "\t", " \\\n", "\x0b", "\u2028"])
    return st.lists(st.tuples(line, sep), max_size=30).map(lambda parts: "".join(a + b for a, b in parts))


def _only_documented(parse: Callable[[str], Any], text: str) -> None:
    try:
        parse(text)
    except ParseError as exc:
        assert isinstance(exc.problem, str) and exc.problem
        assert exc.line is None or (isinstance(exc.line, int) and exc.line >= 1)


@pytest.mark.parametrize("name", sorted(TEXT_PARSERS))
def test_arbitrary_text_only_parse_errors(name: str) -> None:
    parse, _ = TEXT_PARSERS[name]

    @FUZZ
    @given(st.text(max_size=400))
    def run(text: str) -> None:
        _only_documented(parse, text)

    run()


@pytest.mark.parametrize("name", sorted(TEXT_PARSERS))
def test_arbitrary_bytes_as_the_host_layer_decodes_them(name: str) -> None:
    parse, _ = TEXT_PARSERS[name]

    @FUZZ
    @given(st.binary(max_size=400))
    def run(raw: bytes) -> None:
        _only_documented(parse, raw.decode("utf-8", errors="replace"))  # Host.read_text's decoding

    run()


@pytest.mark.parametrize("name", sorted(TEXT_PARSERS))
def test_shaped_text_only_parse_errors(name: str) -> None:
    parse, samples = TEXT_PARSERS[name]

    @FUZZ
    @given(shaped_text(samples))
    def run(text: str) -> None:
        _only_documented(parse, text)

    run()


# -- snapshots ----------------------------------------------------------------------------------------

def _entry() -> st.SearchStrategy[Any]:
    scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
                       st.text(max_size=20))
    return st.one_of(
        st.fixed_dictionaries({"type": st.just("file"), "data": st.text(max_size=40),
                               "encoding": st.sampled_from(["utf-8", "base64", "gzip+base64", "rot13", 7]),
                               "size": st.one_of(st.integers(-5, 10**12), scalar)}),
        st.fixed_dictionaries({"type": st.just("dir"), "names": st.lists(st.one_of(st.text(max_size=8), scalar),
                                                                            max_size=5)}),
        st.fixed_dictionaries({"type": st.just("link"), "target": st.one_of(st.text(max_size=30), scalar)}),
        st.fixed_dictionaries({"type": st.sampled_from(["absent", "char", "fifo", "error", "nope"]),
                               "error": st.one_of(st.text(max_size=10), scalar)}),
        scalar,
    )


PATHS = st.one_of(st.sampled_from(["/proc/cpuinfo", "/etc/default/grub", "/boot/grub/grub.cfg", "/proc", "/",
                                   "/a/../b", "//x", "relative", "/x\0y"]), st.text(max_size=20))

JSON_SNAPSHOTS = st.fixed_dictionaries(
    {"format": st.sampled_from(["hostaudit-snapshot", "other"]), "schema_version": st.sampled_from([1, 2, "1", None]),
     "tool_version": st.text(max_size=8), "hostname": st.one_of(st.text(max_size=8), st.none(), st.integers()),
     "collected_at": st.text(max_size=25),
     "source": st.one_of(st.fixed_dictionaries({"mode": st.sampled_from(["live", "image", "x"]),
                                                "root": st.text(max_size=8), "collector": st.text(max_size=8)}),
                         st.none()),
     "patterns": st.lists(st.text(max_size=10), max_size=3),
     "entries": st.dictionaries(PATHS, _entry(), max_size=6)},
).map(lambda d: json.dumps(d).encode())

TEXT_RECORDS = st.lists(st.one_of(
    st.sampled_from(["meta tool 0.1.0", "meta mode live", "meta root /", "meta hostname h", "dir /proc", "name cpuinfo",
                     "dir /proc -", "link /vmlinuz boot/vmlinuz-6.1.0", "kind /dev/kvm char", "absent /etc/nothing",
                     "file /proc/cpuinfo b64", "cHJvY2Vzc29yCTogMAo=", ".", "file /etc/hostname hex", " 68 6f 73 74",
                     "file /x large 99999999999", "file /x denied", "file /x failed", "name %bmFtZQ==", "name !6e61",
                     "dir %", "file / b64", "end"]),
    st.text(max_size=30)), max_size=20)


@FUZZ
@given(st.one_of(st.binary(max_size=300), JSON_SNAPSHOTS,
                 TEXT_RECORDS.map(lambda ls: ("hostaudit-snapshot 1\n" + "\n".join(ls)).encode()),
                 TEXT_RECORDS.map(lambda ls: ("hostaudit-snapshot 1\n" + "\n".join(ls) + "\nend\n").encode())))
def test_snapshots_only_snapshot_errors(blob: bytes) -> None:
    for raw in (blob, gzip.compress(blob)):
        try:
            snap = parse_snapshot(raw)
        except SnapshotError as exc:
            assert str(exc) and "\n" not in str(exc)
        else:
            assert snap is not None


# -- policy -------------------------------------------------------------------------------------------

POLICY_KEYS = ["hugepages.size", "hugepages.count", "hugepages.memory", "hugepages.min_free", "thp.mode",
               "ksm.mode", "iommu.required", "severity", "waivers", "gate.required", "extends", "nope",
               "memory.reserve"]
TOML_VALUES = st.one_of(
    st.sampled_from(['"2M"', '"1G"', '"infG"', '"nan"', '"1e400"', '"0.0001K"', "16", "-1", "1e400", "nan", "inf",
                     "true", '"always"', '["kernel.*"]', "[[[]]]", '{reason = "x"}', '"2026-01-01"', "0x10",
                     '"' + "9" * 400 + 'G"']),
    st.text(max_size=20).map(json.dumps),
)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(POLICY_KEYS), TOML_VALUES), max_size=6))
def test_policies_only_usage_errors(pairs: list[tuple[str, str]]) -> None:
    tables: dict[str, list[str]] = {}
    for key, value in pairs:
        table, _, name = key.rpartition(".")
        tables.setdefault(table, []).append(f"{name or 'x'} = {value}")
    text = "\n".join(f"{'[' + t + ']' if t else ''}\n" + "\n".join(dict.fromkeys(lines)) for t, lines in tables.items())
    try:
        apply(Policy(), _load_toml(text, "p.toml"), source="p.toml")
    except UsageError as exc:
        assert str(exc) and "Traceback" not in str(exc)


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_policy_text_only_usage_errors(text: str) -> None:
    with contextlib.suppress(UsageError):
        apply(Policy(), _load_toml(text, "p.toml"), source="p.toml")


def test_deeply_nested_policy_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"p\.toml"):
        _load_toml("x = " + "[" * 100_000 + "]" * 100_000, "p.toml")


# -- linear work --------------------------------------------------------------------------------------

def _work(parse: Callable[[str], Any], text: str) -> tuple[int, int]:
    """(calls made, peak bytes allocated) by one parse."""

    def run() -> None:
        with contextlib.suppress(ParseError):
            parse(text)

    _, calls, peak = count_work(run)
    return calls, peak


SKYLAKE_BLOCK = (DATA / "cpuinfo/intel-xeon-gold-6132-skylake-sp.txt").read_text().split("\n\n")[0]

#: One unit of each file kind, repeated to grow the input; a long line grows one line instead.
UNITS: dict[str, tuple[str, Callable[[int], str]]] = {
    "meminfo lines": ("meminfo", lambda n: "".join(f"Key{i}:  {i} kB\n" for i in range(n))),
    "mounts lines": ("mounts", lambda n: "none /dev/hugepages hugetlbfs rw,pagesize=1G 0 0\n" * n),
    "mountinfo lines": ("mountinfo", lambda n: "36 35 98:0 /m /dev/hp rw,noatime master:1 - hugetlbfs none rw\n" * n),
    "fstab lines": ("fstab", lambda n: "hugetlbfs /dev/hugepages hugetlbfs pagesize=1G,mode=1770 0 0\n" * n),
    "fstab long options": ("fstab", lambda n: "h /d hugetlbfs " + ",".join(["mode=1770"] * n) + " 0 0\n"),
    "kconfig lines": ("kconfig", lambda n: "".join(f"CONFIG_X{i}=y\n# CONFIG_Y{i} is not set\n" for i in range(n))),
    "kconfig long string": ("kconfig", lambda n: 'CONFIG_CMDLINE="' + "a" * (n * 50) + '"\n'),
    "cmdline tokens": ("cmdline", lambda n: "hugepages=16 " * n),
    "cmdline quoted": ("cmdline", lambda n: 'a="' + "b c " * n + '"'),
    "swaps lines": ("swaps", lambda n: "Filename Type Size Used Priority\n" + "/dev/sda2 partition 1024 0 -2\n" * n),
    "unit lines": ("systemd unit", lambda n: "[Mount]\n" + "Options=mode=1770\n" * n),
    "unit continuation": ("systemd unit", lambda n: "[Mount]\nOptions=a \\\n" + "b \\\n" * n + "c\n"),
    "os-release lines": ("os-release", lambda n: "".join(f'K{i}="v \\"{i}\\""\n' for i in range(n))),
    "crypto blocks": ("proc/crypto", lambda n: "name : cbc(aes)\ndriver : cbc-aes-aesni\nmodule : aesni_intel\n\n" * n),
    "cpuinfo processors": ("cpuinfo", lambda n: (SKYLAKE_BLOCK + "\n\n") * (n // 10)),
    "sysctl lines": ("sysctl.conf", lambda n: "".join(f"vm.nr_hugepages{i} = {i}\n" for i in range(n))),
    "grubenv keys": ("grubenv", lambda n: "# GRUB Environment Block\n" + "".join(f"k{i}=v\n" for i in range(n))),
    "BLS options": ("BLS entry", lambda n: "title t\nlinux /vmlinuz\noptions " + "a=b " * n + "\n"),
}


@pytest.mark.parametrize("case", sorted(UNITS))
def test_work_grows_linearly(case: str) -> None:
    name, make = UNITS[case]
    parse = TEXT_PARSERS[name][0]
    calls1, peak1 = _work(parse, make(500))
    calls4, peak4 = _work(parse, make(2000))
    assert calls4 <= 5 * max(calls1, 50), f"{case}: {calls1} calls at 1x, {calls4} at 4x"
    assert peak4 <= 5 * max(peak1, 64 * 1024), f"{case}: {peak1} bytes peak at 1x, {peak4} at 4x"
