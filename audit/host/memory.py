"""Facts for huge pages, hugetlbfs, THP, KSM, swap and IOMMU: runtime (/proc, /sys) and persistent
(/etc/fstab, sysctl.d, systemd units, SysV links). Declared with the paths they read, like every fact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from audit.errors import FactError, FactUnavailable
from audit.host.core import Host
from audit.host.registry import fact, parse_text
from audit.parsers.memory import (
    HUGEPAGES_DIR,
    KSM_DIR,
    THP_DIRS,
    HugepagePool,
    KsmState,
    Meminfo,
    SwapDevice,
    ThpSetting,
    parse_ksm_state,
    parse_meminfo,
    parse_swaps,
    parse_thp_setting,
    pools_from_values,
)
from audit.parsers.mounts import FstabEntry, Mount, parse_fstab, parse_mounts
from audit.parsers.sysctl import SYSCTL_CONF, SYSCTL_DIRS, Provenance, SysctlFileError, effective_sysctl
from audit.parsers.systemd import (
    KSMTUNED_CONF,
    SYSV_RC_DIRS,
    UNIT_DIRS,
    MountUnit,
    UnitState,
    is_masked,
    parse_ksmtuned_conf,
    parse_mount_unit,
    sysv_enabled,
    unit_state,
)
from audit.parsers.text import lines
from audit.record import Record

MEMINFO = "/proc/meminfo"
MOUNTS = "/proc/mounts"
SWAPS = "/proc/swaps"
FSTAB = "/etc/fstab"
NODE_DIR = "/sys/devices/system/node"
IOMMU_GROUPS = "/sys/kernel/iommu_groups"
IOMMU_CLASS = "/sys/class/iommu"
ACPI_TABLES = "/sys/firmware/acpi/tables"
EFI_DIR = "/sys/firmware/efi"
HUGEADM_PATHS = ("/usr/bin/hugeadm", "/usr/sbin/hugeadm", "/bin/hugeadm", "/sbin/hugeadm",
                 "/usr/local/bin/hugeadm")
POOL_FILES = ("nr_hugepages", "free_hugepages", "resv_hugepages", "surplus_hugepages", "nr_overcommit_hugepages")
KSM_UNITS = ("ksm.service", "ksmtuned.service")
DEV_HUGEPAGES_UNIT = "dev-hugepages.mount"


@fact(paths=[MEMINFO], runtime=True)
def meminfo(host: Host) -> Meminfo:
    return host.parse(MEMINFO, parse_meminfo, runtime=True)


class HugepageState(Record):
    pools: tuple[HugepagePool, ...]  # system-wide, one per page size the kernel supports
    nodes: tuple[HugepagePool, ...] = ()  # per NUMA node

    def nr(self, size: int) -> int:
        return sum(p.nr or 0 for p in self.pools if p.size == size)

    def sizes(self) -> list[int]:
        return [p.size for p in self.pools]


def _pool_values(host: Host, base: str) -> dict[str, dict[str, str | None]]:
    values: dict[str, dict[str, str | None]] = {}
    for name in host.listdir(base):
        if not name.startswith("hugepages-"):
            continue
        files: dict[str, str | None] = {}
        for fname in POOL_FILES:
            path = f"{base}/{name}/{fname}"
            files[fname] = host.read_text(path) if host.kind(path) == "file" else None
            if files[fname] is not None:  # a malformed value is an error that names its own file
                parse_text(path, files[fname] or "", lambda t, n=name, f=fname: pools_from_values({n: {f: t}}))
        values[name] = files
    return values


@fact(paths=[f"{HUGEPAGES_DIR}/*/*", f"{NODE_DIR}/*/hugepages/*/*"], runtime=True)
def hugepage_state(host: Host) -> HugepageState:
    if not host.exists(HUGEPAGES_DIR):
        if not host.has_runtime:
            raise host.runtime_unavailable(HUGEPAGES_DIR)
        raise FactUnavailable(f"{HUGEPAGES_DIR} does not exist (kernel without hugetlbfs?)", source=HUGEPAGES_DIR)
    pools = parse_text(HUGEPAGES_DIR, "", lambda _: pools_from_values(_pool_values(host, HUGEPAGES_DIR)))
    nodes: list[HugepagePool] = []
    try:
        node_names = [n for n in host.listdir(NODE_DIR) if n.startswith("node") and n[4:].isdigit()]
    except FactUnavailable:
        node_names = []
    for n in node_names:
        base = f"{NODE_DIR}/{n}/hugepages"
        if host.kind(base) == "dir":
            nodes += parse_text(base, "", lambda _, b=base, i=int(n[4:]): pools_from_values(
                _pool_values(host, b), node=i))
    return HugepageState(pools=tuple(pools), nodes=tuple(nodes))


@fact(paths=[MOUNTS, "/proc/self/mounts"], runtime=True)
def mounts(host: Host) -> list[Mount]:
    return host.parse(MOUNTS, parse_mounts, runtime=True)


@fact(paths=[SWAPS], runtime=True)
def swaps(host: Host) -> list[SwapDevice]:
    return host.parse(SWAPS, parse_swaps, runtime=True)



#: the default of a mapping field: shared by every record, so it cannot be changed
_NO_ENTRIES: Mapping[Any, Any] = MappingProxyType({})


class ThpState(Record):
    dir: str  # which sysfs directory (RHEL 6 has its own)
    enabled: ThpSetting
    defrag: ThpSetting | None = None
    shmem_enabled: ThpSetting | None = None
    per_size: Mapping[str, ThpSetting] = _NO_ENTRIES  # mTHP: "hugepages-64kB" -> setting


def _setting(host: Host, path: str) -> ThpSetting | None:
    if host.kind(path) != "file":
        return None
    return host.parse(path, parse_thp_setting)


@fact(paths=[f"{d}/{f}" for d in THP_DIRS for f in ("enabled", "defrag", "shmem_enabled")]
      + [f"{THP_DIRS[0]}/*/enabled"], runtime=True)
def thp_state(host: Host) -> ThpState:
    for d in THP_DIRS:
        if host.kind(f"{d}/enabled") == "file":
            enabled = host.parse(f"{d}/enabled", parse_thp_setting)
            per_size: dict[str, ThpSetting] = {}
            for name in host.listdir(d):
                if name.startswith("hugepages-"):
                    s = _setting(host, f"{d}/{name}/enabled")
                    if s is not None:
                        per_size[name] = s
            return ThpState(dir=d, enabled=enabled, defrag=_setting(host, f"{d}/defrag"),
                            shmem_enabled=_setting(host, f"{d}/shmem_enabled"), per_size=per_size)
    if not host.has_runtime:
        raise host.runtime_unavailable(f"{THP_DIRS[0]}/enabled")
    raise FactUnavailable(
        f"neither {THP_DIRS[0]}/enabled nor {THP_DIRS[1]}/enabled exists (kernel without THP?)",
        source=f"{THP_DIRS[0]}/enabled",
    )


@fact(paths=[f"{KSM_DIR}/*"], runtime=True)
def ksm_state(host: Host) -> KsmState:
    if host.kind(KSM_DIR) != "dir":
        if not host.has_runtime:
            raise host.runtime_unavailable(KSM_DIR)
        raise FactUnavailable(f"{KSM_DIR} does not exist (kernel built without CONFIG_KSM)", source=KSM_DIR)
    values = {}
    for name in host.listdir(KSM_DIR):
        path = f"{KSM_DIR}/{name}"
        if host.kind(path) == "file":
            try:
                values[name] = host.read_text(path)
            except FactError:
                continue  # a write-only or unreadable tunable says nothing about the state
            parse_text(path, values[name], lambda t, n=name: parse_ksm_state({n: t}))  # errors name the file
    return parse_text(KSM_DIR, "", lambda _: parse_ksm_state(values))


@fact(paths=[FSTAB])
def fstab(host: Host) -> list[FstabEntry]:
    return host.parse(FSTAB, parse_fstab)


class SysctlConfig(Record):
    effective: dict[str, Provenance]
    files: tuple[str, ...]  # the files read, in precedence order


@fact(paths=[SYSCTL_CONF, *(f"{d}/*.conf" for d in SYSCTL_DIRS)])
def sysctl_config(host: Host) -> SysctlConfig:
    files: dict[str, str | None] = {}
    for d in SYSCTL_DIRS:
        try:
            names = host.listdir(d)
        except (FactUnavailable, FactError):
            continue
        for name in names:
            if not name.endswith(".conf"):
                continue
            path = f"{d}/{name}"
            if is_masked(host.readlink(path), link_dir=d):
                files[path] = None  # masked: hides same-named files in lower directories
                continue
            if host.kind(path) == "file":
                files[path] = host.read_text(path)
    if host.kind(SYSCTL_CONF) == "file":
        files[SYSCTL_CONF] = host.read_text(SYSCTL_CONF)
    try:
        effective = effective_sysctl(files)
    except SysctlFileError as exc:
        raise FactError(exc.path, exc.problem, line=exc.line) from None
    return SysctlConfig(effective=effective, files=tuple(files))


class ServiceTree(Record):
    """What systemd and SysV init would start at boot, for the units hostaudit asks about."""

    unit_files: dict[str, str | None]  # path -> link target (None: a regular file)
    wants: dict[str, list[str]]  # "<unit dir>/<x>.wants" -> names
    rc_links: dict[str, list[str]]  # "/etc/rc3.d" -> names
    mount_units: dict[str, MountUnit]  # path -> parsed .mount unit that mounts hugetlbfs

    def state(self, unit: str) -> UnitState:
        return unit_state(unit, unit_files=self.unit_files, wants_listing=self.wants)

    def starts_at_boot(self, unit: str) -> bool:
        return self.state(unit).starts_at_boot or sysv_enabled(unit.removesuffix(".service"), self.rc_links)


@fact(paths=[*(f"{d}/*" for d in UNIT_DIRS), *(f"{d}/*.wants/*" for d in UNIT_DIRS), *(f"{d}/*" for d in SYSV_RC_DIRS)])
def service_tree(host: Host) -> ServiceTree:
    unit_files: dict[str, str | None] = {}
    wants: dict[str, list[str]] = {}
    mount_units: dict[str, MountUnit] = {}
    interesting = {*KSM_UNITS, DEV_HUGEPAGES_UNIT}
    for d in UNIT_DIRS:
        try:
            names = host.listdir(d)
        except (FactUnavailable, FactError):
            continue
        for name in names:
            path = f"{d}/{name}"
            if name.endswith(".wants"):
                try:
                    wants[path] = host.listdir(path)
                except (FactUnavailable, FactError):
                    wants[path] = []
                continue
            if name in interesting or name.endswith(".mount"):
                unit_files[path] = host.readlink(path)
            if name.endswith(".mount") and host.kind(path) == "file":
                try:
                    text = host.read_text(path)
                    if "hugetlbfs" in text:
                        mount_units[path] = parse_text(path, text, parse_mount_unit)
                except FactError:
                    continue
    rc_links: dict[str, list[str]] = {}
    for d in SYSV_RC_DIRS:
        try:
            rc_links[d] = host.listdir(d)
        except (FactUnavailable, FactError):
            continue
    return ServiceTree(unit_files=unit_files, wants=wants, rc_links=rc_links, mount_units=mount_units)


@fact(paths=[KSMTUNED_CONF])
def ksmtuned_conf(host: Host) -> dict[str, str]:
    return host.parse(KSMTUNED_CONF, parse_ksmtuned_conf)


class IommuState(Record):
    groups: int  # entries under /sys/kernel/iommu_groups
    units: tuple[str, ...]  # /sys/class/iommu entries (dmar0, ivhd0; arm64 SMMUs: smmu3.0x..., smmu.0x...)
    #: ACPI tables that describe IOMMUs, present in firmware: DMAR (Intel VT-d), IVRS (AMD-Vi), IORT
    #: (arm64: SMMUs, and the interrupt controller's ITS, so an IORT alone does not prove an SMMU)
    acpi_tables: tuple[str, ...]
    devicetree: bool = False  # booted with a device tree (arm64 boards describe their SMMU there instead)


#: The ACPI tables that describe IOMMUs, in the order they are reported.
IOMMU_ACPI_TABLES = ("DMAR", "IVRS", "IORT")
DEVICETREE = "/sys/firmware/devicetree/base"


@fact(paths=[f"{IOMMU_GROUPS}/*", f"{IOMMU_CLASS}/*", f"{ACPI_TABLES}/DMAR", f"{ACPI_TABLES}/IVRS",
             f"?{ACPI_TABLES}/IORT", f"?{DEVICETREE}"], runtime=True)
def iommu_state(host: Host) -> IommuState:
    if not host.has_runtime:
        raise host.runtime_unavailable(IOMMU_GROUPS)
    if host.kind("/sys/kernel") is None:
        raise FactUnavailable("/sys is not available here", source="/sys")

    def names(path: str) -> list[str]:
        try:
            return host.listdir(path)
        except FactUnavailable:
            return []

    tables = tuple(t for t in IOMMU_ACPI_TABLES if host.kind(f"{ACPI_TABLES}/{t}") is not None)
    return IommuState(groups=len(names(IOMMU_GROUPS)), units=tuple(names(IOMMU_CLASS)), acpi_tables=tables,
                      devicetree=host.kind(DEVICETREE) == "dir")


@fact(paths=[EFI_DIR], runtime=True)
def booted_efi(host: Host) -> bool:
    """Live: did firmware boot through UEFI? Unknown on an image (both chains are evaluated)."""
    if not host.has_runtime:
        raise host.runtime_unavailable(EFI_DIR)
    return host.kind(EFI_DIR) == "dir"


@fact(paths=[f"?{p}" for p in HUGEADM_PATHS])
def hugeadm_path(host: Host) -> str | None:
    return next((p for p in HUGEADM_PATHS if host.kind(p) == "file"), None)


def fstab_hugetlbfs(entries: Sequence[FstabEntry]) -> list[FstabEntry]:
    return [e for e in entries if e.vfstype == "hugetlbfs" and "noauto" not in e.option_map]


def fstab_swaps(entries: Sequence[FstabEntry]) -> list[FstabEntry]:
    return [e for e in entries if e.vfstype == "swap" and "noauto" not in e.option_map]


SYSFS_CONF_PATHS = ("/etc/sysfs.conf", "/etc/sysfs.d")
TMPFILES_DIRS = ("/etc/tmpfiles.d", "/run/tmpfiles.d", "/usr/lib/tmpfiles.d")


def _ksm_write(line: str) -> bool:
    """``kernel/mm/ksm/run = 1`` (sysfsutils) or ``w /sys/kernel/mm/ksm/run - - - - 1`` (tmpfiles.d)."""
    text = line.split("#", 1)[0].strip()
    if not text:
        return False
    if "=" in text and text.split("=", 1)[0].strip().replace(".", "/").endswith("kernel/mm/ksm/run"):
        return text.split("=", 1)[1].strip() == "1"
    fields = text.split()
    return (len(fields) >= 7 and fields[0] in ("w", "w+") and fields[1].rstrip("/") == "/sys/kernel/mm/ksm/run"
            and fields[6] == "1")


@fact(paths=["/etc/sysfs.conf", "/etc/sysfs.d/*.conf", *(f"{d}/*.conf" for d in TMPFILES_DIRS)])
def ksm_boot_writes(host: Host) -> list[str]:
    """Settings that turn KSM on at boot without a service: "path:line: text" for each."""
    files = ["/etc/sysfs.conf"]
    for d in ("/etc/sysfs.d", *TMPFILES_DIRS):
        try:
            files += [f"{d}/{n}" for n in host.listdir(d) if n.endswith(".conf")]
        except (FactUnavailable, FactError):
            continue
    found = []
    for path in files:
        if host.kind(path) != "file":
            continue
        for no, line in enumerate(lines(host.read_text(path)), 1):
            if _ksm_write(line):
                found.append(f"{path}:{no}: {line.strip()}")
    return found
