"""What the boot-configuration resolver finds: the default entry, its parameters and their provenance,
the regeneration inputs beside it, and the parameter names the resolver watches."""

from __future__ import annotations

import functools
import re

from audit.boot.params import judge_name, load_table, series_of
from audit.model import Evidence
from audit.parsers.cmdline import Param
from audit.record import Record

LOADERS = ("grub2", "grub2-bls", "grub-legacy", "systemd-boot")

#: Where an EFI System Partition is mounted.
ESP_ROOTS = ("/boot/efi", "/efi", "/boot")
GRUB2_CONFIGS = ("/boot/grub2/grub.cfg", "/boot/grub/grub.cfg")
LEGACY_CONFIGS = ("/boot/grub/grub.conf", "/boot/grub/menu.lst", "/etc/grub.conf")
BLS_DIRS = ("/boot/loader/entries", "/loader/entries")
DEFAULT_GRUB = "/etc/default/grub"
DEFAULT_GRUB_D = "/etc/default/grub.d"
KERNEL_CMDLINE = "/etc/kernel/cmdline"
TUNED_BOOTCMDLINE = "/etc/tuned/bootcmdline"

#: Variables tuned's grub.d snippet may leave undefined on purpose (tuned #704): expanding them
#: to nothing is what happens and is harmless.
OPTIONAL_VARIABLES = frozenset({"tuned_params", "tuned_initrd"})
#: Parameters whose repetition and order matter (hugetlbpage.rst): compared as sequences.
ORDERED_PARAMS = frozenset({"hugepagesz", "hugepages", "default_hugepagesz"})
#: Parameters the checks built on this module read: a glued ``name=`` of these is flagged, and a short
#: or dotted name is compared with these only (every other name with the kernel's own list,
#: audit.boot.params).
WATCHED_PARAMS = frozenset(
    {
        "transparent_hugepage",
        "hugepagesz",
        "hugepages",
        "default_hugepagesz",
        "hugetlb_cma",
        "hugetlb_free_vmemmap",
        "intel_iommu",
        "amd_iommu",
        "iommu",
        "iommu.passthrough",
        "iommu.strict",
        "isolcpus",
        "nohz_full",
        "rcu_nocbs",
        "mitigations",
        "spectre_v2",
    }
)


class BootEntry(Record):
    title: str
    kernel: str | None  # image path as written in the entry
    version: str | None  # BLS "version", else guessed from the image name
    options: str  # the arguments as written (BLS options, linux line, kernel line)
    cmdline: str | None  # variables expanded; None when the loader does not say (UKI, chainload)
    source: str  # "<file>:<line>" of the entry
    entry_id: str | None = None  # menuentry --id, or the BLS file name without .conf
    index: str = ""  # position in GRUB's menu: "1", "1>2"
    kind: str = "menuentry"  # "menuentry", "bls", "legacy"
    recovery: bool = False  # a recovery/rescue entry (GRUB_CMDLINE_LINUX_DEFAULT does not apply)
    hypervisor: str | None = None  # Xen: the hypervisor line; cmdline is then the dom0 kernel's


class CmdlineInput(Record):
    """One value regeneration would use, e.g. GRUB_CMDLINE_LINUX from /etc/default/grub."""

    name: (
        str  # "GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT", "/etc/kernel/cmdline", "TUNED_BOOT_CMDLINE"
    )
    value: str
    params: tuple[Param, ...]
    source: str  # "<file>:<line>[, <file>:<line>...]" of every assignment that built it
    applies: bool = False  # whether this loader's regeneration puts it into the default entry
    note: str = ""  # how it reaches (or does not reach) the entry


class StaleParam(Record):
    """A parameter an input asks for that the effective entry lacks or sets differently.

    Values are what follows ``=``; a bare flag is ``""``; ``effective`` None means absent.
    """

    name: str
    wanted: str
    effective: str | None
    source: str


class BootConfig(Record):
    loader: str | None  # one of LOADERS, None when no boot configuration was found
    entry: BootEntry | None
    params: tuple[Param, ...] = ()  # of entry.cmdline
    provenance: tuple[Evidence, ...] = ()
    summary: str = ""
    unresolved: tuple[str, ...] = ()  # variables the entry uses that nothing defines
    problems: tuple[str, ...] = ()
    inputs: tuple[CmdlineInput, ...] = ()
    stale: tuple[StaleParam, ...] = ()
    family_hint: str | None = None  # how to regenerate: "update-grub", "grub2-mkconfig -o ...", "grubby"...
    firmware: str | None = None  # chain used: "efi" or "bios"
    config_path: str | None = None  # the file the default entry was read from
    #: non-empty when the entry is what a generator will write (an image whose configuration is not
    #: generated yet), not what a configuration says: "predicted: /boot/grub/grub.cfg not generated
    #: yet"; the summary and provenance say from which inputs
    prediction: str = ""

    @property
    def predicted(self) -> bool:
        return bool(self.prediction)


def effective_params(cfg: BootConfig) -> list[Param] | None:
    """The parameters the next boot passes to the kernel; None when they cannot be known here
    (no configuration, unsupported loader, UKI/chainload entry, or a variable such as
    ``$kernelopts`` that nothing defines). Callers must treat None as unknown, never as empty."""
    if cfg.entry is None or cfg.entry.cmdline is None:
        return None
    if any(v not in OPTIONAL_VARIABLES for v in cfg.unresolved):
        return None
    return list(cfg.params)


@functools.cache
def _glued_any() -> re.Pattern[str]:
    """A watched name glued on (some letter or digit before ``name=``): any of them, in one search."""
    return re.compile("[0-9A-Za-z](?:" + "|".join(re.escape(n) for n in sorted(WATCHED_PARAMS)) + ")=")


def glued_params(params: list[Param] | tuple[Param, ...]) -> list[str]:
    """Tokens glued onto a previous value (tuned #268: ``console=ttyS0,115200n8transparent_hugepage=never``)."""
    out: list[str] = []
    watched = sorted(WATCHED_PARAMS)
    for p in params:
        if p.value and "=" in p.value and _glued_any().search(p.value):  # then which one, as before
            for name in watched:
                if re.search(rf"[0-9A-Za-z]{re.escape(name)}=", p.value):
                    out.append(
                        f"'{p.name}={p.value}' looks like two parameters glued together ('{name}=' inside)"
                    )
                    break
    return out


def misspelt_params(params: list[Param] | tuple[Param, ...], release: str | None = None) -> list[str]:
    """Near misses of the names the kernel accepts (``transparent_hugepages=never`` is ignored).

    The names are the kernel's own (audit.boot.params: kernel-parameters.txt and the source's
    ``__setup``/``early_param``, releases listed in the table), so a real parameter such as
    ``nospectre_v2`` is never called misspelt. Short or dotted names are compared with the watched
    names only. With ``release`` newer than the table's newest, a near miss is not called misspelt
    (it may be a parameter the table does not know yet): only ``judge_params`` says so, at info level."""
    table = load_table()
    kernel = series_of(release)
    out: list[str] = []
    for p in params:
        if "$" in p.key:
            continue
        if p.key not in table.names:
            out += [f.message for f in judge_name(p, kernel, table, WATCHED_PARAMS) if f.level == "warn"]
    return out


def suspicious_params(params: list[Param] | tuple[Param, ...], release: str | None = None) -> list[str]:
    """Near-miss spellings of kernel parameters (the kernel silently ignores
    ``transparent_hugepages=never``) and tokens glued onto a previous value (tuned #268), per
    parameter in command line order."""
    out: list[str] = []
    for p in params:
        out += misspelt_params([p], release)
        out += glued_params([p])
    return out
