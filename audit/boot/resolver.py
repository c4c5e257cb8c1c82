"""Which kernel command line the next boot uses, where it comes from, and what regenerating the
boot configuration would ask for.

The boot loader is located by evidence (files present), never by distribution version: GRUB 2 with
menu entries or BLS entries (``blscfg``), EFI stubs that redirect to another ``grub.cfg``, legacy
GRUB, and systemd-boot (detected, not evaluated). Regeneration inputs (``/etc/default/grub``,
``/etc/kernel/cmdline``, tuned's ``bootcmdline``) are reported beside the effective entry, never in
its place: a difference is a "stale configuration" finding.
"""

from __future__ import annotations

import difflib
import posixpath
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from audit.errors import FactError, FactUnavailable, ParseError
from audit.host.fs import FileSource, normalize
from audit.model import Evidence
from audit.parsers.cmdline import Param, tokenize, values
from audit.parsers.grub import (
    BlscfgCall,
    BlsEntry,
    GrubRun,
    MenuEntry,
    MenuItem,
    ShellVar,
    Submenu,
    entry_kernel,
    expand_bls_options,
    parse_bls_entry,
    parse_grub_number,
    parse_grub_script,
    parse_kernel_cmdline_file,
    parse_legacy_default_file,
    parse_legacy_grub,
    parse_shell_vars,
    run_grub_script,
    sort_bls_names,
    split_default,
)

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
#: Parameters the checks built on this module read; near-misses of these are flagged.
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


@dataclass(frozen=True, slots=True, kw_only=True)
class BootEntry:
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


@dataclass(frozen=True, slots=True, kw_only=True)
class CmdlineInput:
    """One value regeneration would use, e.g. GRUB_CMDLINE_LINUX from /etc/default/grub."""

    name: (
        str  # "GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT", "/etc/kernel/cmdline", "TUNED_BOOT_CMDLINE"
    )
    value: str
    params: tuple[Param, ...]
    source: str  # "<file>:<line>[, <file>:<line>...]" of every assignment that built it
    applies: bool = False  # whether this loader's regeneration puts it into the default entry
    note: str = ""  # how it reaches (or does not reach) the entry


class StaleParam(NamedTuple):
    """A parameter an input asks for that the effective entry lacks or sets differently.

    Values are what follows ``=``; a bare flag is ``""``; ``effective`` None means absent.
    """

    name: str
    wanted: str
    effective: str | None
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BootConfig:
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


def effective_params(cfg: BootConfig) -> list[Param] | None:
    """The parameters the next boot passes to the kernel; None when they cannot be known here
    (no configuration, unsupported loader, UKI/chainload entry, or a variable such as
    ``$kernelopts`` that nothing defines). Callers must treat None as unknown, never as empty."""
    if cfg.entry is None or cfg.entry.cmdline is None:
        return None
    if any(v not in OPTIONAL_VARIABLES for v in cfg.unresolved):
        return None
    return list(cfg.params)


def suspicious_params(params: list[Param] | tuple[Param, ...]) -> list[str]:
    """Near-miss spellings of watched parameters (the kernel silently ignores
    ``transparent_hugepages=never``) and tokens glued onto a previous value (tuned #268)."""
    out: list[str] = []
    watched = sorted(WATCHED_PARAMS)
    for p in params:
        key = p.key
        if key not in WATCHED_PARAMS and "$" not in key:
            close = difflib.get_close_matches(key, watched, n=1, cutoff=0.85)
            if close:
                out.append(
                    f"'{p.name}' is not a kernel parameter (did you mean '{close[0]}'?); "
                    "the kernel ignores it"
                )
        if p.value:
            for name in watched:
                if re.search(rf"[0-9A-Za-z]{re.escape(name)}=", p.value):
                    out.append(
                        f"'{p.name}={p.value}' looks like two parameters glued together ('{name}=' inside)"
                    )
                    break
    return out


# -- reading files inside the root ---------------------------------------------------------------------


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


class _Reader:
    """Reads through the FileSource, turning errors into problems."""

    def __init__(self, fs: FileSource) -> None:
        self.fs = fs
        self.problems: list[str] = []

    def text(self, path: str) -> str | None:
        try:
            return _decode(self.fs.read_bytes(path))
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


def _grub_candidates(path: str) -> list[str]:
    """Root paths a GRUB path may designate: the device part is dropped and /boot may be its own
    file system (``($dev)/grub2/grub.cfg`` is ``/boot/grub2/grub.cfg``), as may the ESP."""
    p = re.sub(r"^\([^)]*\)", "", path.strip())
    p = normalize(p)
    out = [p]
    if not p.startswith("/boot/"):
        out.append(normalize("/boot" + p))
        out.append(normalize("/boot/efi" + p))
    return out


class _GrubFiles:
    """GrubFiles over the audited root."""

    def __init__(self, reader: _Reader) -> None:
        self.reader = reader

    def exists(self, path: str, *, nonempty: bool = False) -> bool | None:
        for cand in _grub_candidates(path):
            if self.reader.is_file(cand):
                if not nonempty:
                    return True
                text = self.reader.text(cand)
                return None if text is None else bool(text)
        return False

    def read(self, path: str) -> tuple[str, str] | None:
        for cand in _grub_candidates(path):
            if self.reader.is_file(cand):
                text = self.reader.text(cand)
                return None if text is None else (cand, text)
        return None


# -- one chain (EFI or BIOS) --------------------------------------------------------------------------


@dataclass
class _Chain:
    firmware: str
    loader: str | None = None
    found: bool = False
    entry: BootEntry | None = None
    provenance: list[Evidence] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    config_path: str | None = None
    family_hint: str | None = None
    variables: tuple[str, ...] = ()  # variables the entry's options reference
    summary: str = ""

    @property
    def coherent(self) -> bool:
        return self.entry is not None and self.entry.cmdline is not None


@dataclass
class _Item:
    """A concrete menu item once blscfg entries are in place."""

    kind: str  # "menuentry", "submenu", "bls"
    title: str
    entry_id: str | None
    conditional: bool
    menu: MenuEntry | None = None
    children: list[_Item] = field(default_factory=list)
    bls: BlsEntry | None = None
    bls_path: str | None = None
    call: BlscfgCall | None = None
    source: str = ""


def _version_of(kernel: str | None) -> str | None:
    if not kernel:
        return None
    base = kernel.rsplit("/", 1)[-1]
    m = re.match(r"(?:vmlinuz|vmlinux|bzImage|kernel|Image)-(.+)$", base)
    return m.group(1) if m else None


def _is_recovery(title: str, entry_id: str | None, kernel: str | None, args: str) -> bool:
    text = f"{title} {entry_id or ''} {kernel or ''}".lower()
    if "recovery" in text or "rescue" in text:
        return True
    return any(p.key in ("single", "recovery", "emergency") for p in tokenize(args))


def _family_for_grub2(reader: _Reader, config: str, loader: str) -> str:
    if loader == "grub2-bls":
        return "grubby"
    if config == "/boot/grub/grub.cfg" and any(
        reader.fs.kind(t) is not None for t in ("/usr/sbin/update-grub", "/sbin/update-grub")
    ):
        return "update-grub"
    mkconfig2 = reader.fs.kind("/usr/sbin/grub2-mkconfig") is not None
    mkconfig = reader.fs.kind("/usr/sbin/grub-mkconfig") is not None
    if mkconfig2 or (not mkconfig and "/grub2/" in config):
        return f"grub2-mkconfig -o {config}"
    if mkconfig:
        return f"grub-mkconfig -o {config}"
    return "update-grub" if config == "/boot/grub/grub.cfg" else f"grub2-mkconfig -o {config}"


def _find_esp_files(reader: _Reader, name: str) -> list[str]:
    """``<esp>/EFI/<vendor>/<name>`` for every vendor directory, in a stable order."""
    found: list[str] = []
    seen: set[str] = set()
    for esp in ESP_ROOTS:
        if reader.fs.kind(esp) != "dir":
            continue
        entries = reader.listdir(esp)
        efi_names = [e for e in entries if e == "EFI" or (esp != "/boot" and e.lower() == "efi")]
        for efi in efi_names:
            efidir = f"{esp}/{efi}"
            if reader.fs.kind(efidir) != "dir":
                continue
            for vendor in reader.listdir(efidir):
                vdir = f"{efidir}/{vendor}"
                if reader.fs.kind(vdir) != "dir":
                    continue
                for fname in reader.listdir(vdir):
                    if fname.lower() == name.lower():
                        path = f"{vdir}/{fname}"
                        real = reader.real_path(path)
                        if reader.is_file(path) and real not in seen:
                            seen.add(real)
                            found.append(path)
    return found


def _has_efi_binary(reader: _Reader, path: str) -> bool:
    vdir = posixpath.dirname(path)
    return any(
        n.lower().endswith(".efi") and n.lower().startswith(("grub", "shim")) for n in reader.listdir(vdir)
    )


def _pick_esp_config(reader: _Reader, paths: list[str], chain: _Chain) -> str:
    def vendor(p: str) -> str:
        return posixpath.basename(posixpath.dirname(p)).lower()

    candidates = [p for p in paths if vendor(p) != "boot"] or paths
    with_binary = [p for p in candidates if _has_efi_binary(reader, p)]
    pool = with_binary or candidates
    if len(pool) > 1:
        chain.problems.append(
            "several EFI GRUB configurations (" + ", ".join(pool) + "): the firmware boot order decides "
            f"which one boots; {pool[0]} is used"
        )
    return pool[0]


def _systemd_boot_evidence(reader: _Reader) -> tuple[list[str], list[str]]:
    """(strong, weak) evidence of systemd-boot: its loader.conf, binary or unified kernel images;
    and BLS entries on the ESP, which GRUB does not read by default."""
    strong: list[str] = []
    weak: list[str] = []
    for esp in ESP_ROOTS:
        if reader.is_file(f"{esp}/loader/loader.conf"):
            strong.append(f"{esp}/loader/loader.conf")
        for sub in ("EFI/systemd", "EFI/Linux"):
            strong.extend(
                f"{esp}/{sub}/{n}" for n in reader.listdir(f"{esp}/{sub}") if n.lower().endswith(".efi")
            )
        if esp != "/boot" and any(n.endswith(".conf") for n in reader.listdir(f"{esp}/loader/entries")):
            weak.append(f"{esp}/loader/entries")
    return strong, weak


def _systemd_boot(chain: _Chain, evidence: list[str]) -> _Chain:
    chain.found = True
    chain.loader = "systemd-boot"
    chain.problems.append(
        "unsupported boot loader: systemd-boot (" + ", ".join(evidence) + "); its entries are not evaluated"
    )
    chain.provenance.append(Evidence(source=evidence[0], observed="systemd-boot evidence"))
    chain.summary = "systemd-boot: unsupported boot loader, command line not evaluated"
    return chain


def _bls_files(reader: _Reader, blsdir: str | None) -> tuple[str | None, list[str]]:
    dirs = _grub_candidates(blsdir) if blsdir else list(BLS_DIRS)
    for d in dirs:
        if reader.fs.kind(d) == "dir":
            names = [
                n for n in reader.listdir(d) if n.endswith(".conf") and not n.startswith(".") and len(n) > 5
            ]
            return d, names
    return None, []


def _expand_menu(reader: _Reader, run: GrubRun, chain: _Chain) -> list[_Item]:
    def build(items: tuple[MenuItem, ...]) -> list[_Item]:
        out: list[_Item] = []
        for item in items:
            if isinstance(item, MenuEntry):
                out.append(
                    _Item(
                        kind="menuentry",
                        title=item.title,
                        entry_id=item.entry_id,
                        conditional=item.conditional,
                        menu=item,
                        source=f"{item.source}:{item.line}",
                    )
                )
            elif isinstance(item, Submenu):
                out.append(
                    _Item(
                        kind="submenu",
                        title=item.title,
                        entry_id=item.entry_id,
                        conditional=item.conditional,
                        children=build(item.children),
                        source=f"{item.source}:{item.line}",
                    )
                )
            else:
                out.extend(_bls_items(reader, item, chain))
        return out

    return build(run.menu)


def _bls_items(reader: _Reader, call: BlscfgCall, chain: _Chain) -> list[_Item]:
    d, names = _bls_files(reader, call.blsdir)
    where = f"{call.source}:{call.line}"
    if d is None or not names:
        chain.problems.append(f"{where}: blscfg finds no entries in {call.blsdir or ' or '.join(BLS_DIRS)}")
        return []
    stems = {n[:-5]: n for n in names}
    items: list[_Item] = []
    for stem in sort_bls_names(stems):
        path = f"{d}/{stems[stem]}"
        text = reader.text(path)
        if text is None:
            continue
        try:
            bls = parse_bls_entry(text)
        except ParseError as exc:
            chain.problems.append(f"{path}: {exc.problem}; GRUB would skip it")
            continue
        linux = bls.grub_values("linux")
        efi = bls.grub_values("efi")
        if not linux and not efi:
            chain.problems.append(f"{path}: no 'linux' (or 'efi') line GRUB can read; GRUB skips this entry")
            continue
        titles = bls.grub_values("title")
        items.append(
            _Item(
                kind="bls",
                title=titles[0][0] if titles else (linux[0][0] if linux else efi[0][0]),
                entry_id=stem,
                conditional=call.conditional,
                bls=bls,
                bls_path=path,
                call=call,
                source=path,
            )
        )
    return items


def _matches(item: _Item, want: str) -> bool:
    return want in (item.title, item.entry_id)


def _select(items: list[_Item], default: str, chain: _Chain) -> tuple[_Item | None, str]:
    """GRUB's choice of the default entry: index, title or id, ``>`` descends into submenus; an
    unknown value falls back to the first entry."""
    parts = split_default(default) if default else ["0"]
    level = items
    path: list[int] = []
    chosen: _Item | None = None
    for depth, part in enumerate(parts):
        if not level:
            chain.problems.append("the default points into an empty submenu")
            return None, ">".join(map(str, path))
        idx = parse_grub_number(part)
        if idx is None:
            idx = next((k for k, it in enumerate(level) if _matches(it, part)), None)
            if idx is None:
                chain.problems.append(
                    f"default entry {part!r} matches no menu entry: GRUB falls back to the first entry"
                )
                idx = 0
        elif idx >= len(level):
            chain.problems.append(
                f"default index {idx} is beyond the {len(level)} entries: GRUB uses the first"
            )
            idx = 0
        if any(it.conditional for it in level[: idx + 1]):
            chain.problems.append(
                "a menu entry up to the default one is defined under a condition hostaudit cannot "
                "evaluate: the index may be off"
            )
        path.append(idx)
        chosen = level[idx]
        if chosen.kind == "submenu":
            level = chosen.children
            if depth == len(parts) - 1:
                chain.problems.append(
                    f"the default selects submenu {chosen.title!r}; GRUB opens it on its first entry"
                )
                parts.append("0")
        else:
            if depth < len(parts) - 1:
                chain.problems.append(f"the default {default!r} goes below an entry that is not a submenu")
            break
    if chosen is not None and chosen.kind == "submenu":
        return None, ">".join(map(str, path))
    return chosen, ">".join(map(str, path))


def _default_provenance(run: GrubRun) -> str:
    default = run.env.get("default", "")
    origin = run.origins.get("default", "not set")
    loaded: dict[str, str] = {}
    for _label, vals in run.env_loads:
        loaded.update(vals)
    via = ""
    for var in ("next_entry", "saved_entry"):
        if default and loaded.get(var) == default:
            via = f" = ${{{var}}} from {run.origins.get(var, 'grubenv').split(' (load_env')[0]}"
            if var == "next_entry":
                via += " (one-shot: the boot after the next one uses saved_entry again)"
            break
    return f"default={default!r} (set at {origin}){via}"


def _resolve_grub2(
    reader: _Reader, files: _GrubFiles, path: str, chain: _Chain, platform: str | None
) -> None:
    chain.found = True
    chain.loader = "grub2"
    text = reader.text(path)
    if text is None:
        chain.problems.append(f"{path}: cannot be read")
        return
    try:
        script = parse_grub_script(text)
    except ParseError as exc:
        chain.problems.append(f"{path}:{exc.line or '?'}: {exc.problem}; GRUB configuration not usable")
        chain.config_path = path
        return
    d = posixpath.dirname(path)
    run = run_grub_script(
        script, label=path, files=files, platform=platform, env={"prefix": d, "config_directory": d}
    )
    chain.problems.extend(run.problems)
    config = path
    for r in run.redirects:
        if r.command in ("configfile", "normal"):
            chain.provenance.append(
                Evidence(
                    source=r.source,
                    observed=f"line {r.line}: {r.command} {r.target} -> {r.resolved or 'not found'}",
                )
            )
            if r.resolved:
                config = r.resolved
        elif r.resolved:
            chain.provenance.append(
                Evidence(source=r.source, observed=f"line {r.line}: {r.command} {r.resolved}")
            )
    chain.config_path = config
    chain.family_hint = _family_for_grub2(reader, config, "grub2")
    for label, vals in run.env_loads:
        shown = "; ".join(f"{k}={v}" for k, v in vals.items() if k in _ENV_SHOWN) or "no boot variables"
        chain.provenance.append(Evidence(source=label, observed=f"load_env: {shown}"))
    items = _expand_menu(reader, run, chain)
    if not items:
        chain.problems.append(f"{config}: no menu entries (no menuentry and no usable blscfg)")
        return
    default = run.env.get("default", "")
    if "default" in run.uncertain:
        chain.problems.append(
            f"'default' is also set under an undecidable condition at {run.uncertain['default']}"
        )
    item, index = _select(items, default, chain)
    chain.provenance.append(
        Evidence(source=config, observed=_default_provenance(run) + f" -> menu position {index}")
    )
    if item is None:
        return
    if item.kind == "bls":
        chain.loader = "grub2-bls"
        _bls_entry(item, index, run, chain)
    else:
        _menu_entry(item, index, run, files, platform, chain)
    chain.family_hint = _family_for_grub2(reader, config, chain.loader)


_ENV_SHOWN = ("saved_entry", "next_entry", "kernelopts", "tuned_params", "tuned_initrd", "default_kernelopts")


def _menu_entry(
    item: _Item, index: str, run: GrubRun, files: _GrubFiles, platform: str | None, chain: _Chain
) -> None:
    assert item.menu is not None
    k = entry_kernel(item.menu, env=run.env, files=files, platform=platform)
    if k is None:
        chain.problems.append(f"{item.source}: the default entry {item.title!r} loads no Linux kernel")
        chain.entry = BootEntry(
            title=item.title,
            kernel=None,
            version=None,
            options="",
            cmdline=None,
            source=item.source,
            entry_id=item.entry_id,
            index=index,
        )
        return
    cmdline: str | None = k.cmdline
    if k.chainloader:
        chain.problems.append(
            f"{item.source}: the default entry chainloads {k.chainloader}; its command line is unknown"
        )
        cmdline = None
    if k.hypervisor:
        chain.problems.append(
            f"{item.source}: Xen entry: the hypervisor gets '{k.hypervisor}'; the parameters here are "
            "the dom0 kernel's, from its module line"
        )
    if k.uncertain:
        chain.problems.append(
            f"{item.source}: the kernel line is chosen under a condition hostaudit cannot evaluate"
        )
    for var in k.variables:
        if var in run.uncertain:
            chain.problems.append(
                f"${var} is also set under an undecidable condition at {run.uncertain[var]}"
            )
    chain.unresolved.extend(k.undefined)
    chain.variables = k.variables
    chain.entry = BootEntry(
        title=item.title,
        kernel=k.path,
        version=_version_of(k.path),
        options=k.raw_args,
        cmdline=cmdline,
        source=f"{item.menu.source}:{k.line}",
        entry_id=item.entry_id,
        index=index,
        kind="menuentry",
        recovery=_is_recovery(item.title, item.entry_id, k.path, k.raw_args),
        hypervisor=k.hypervisor,
    )
    chain.provenance.append(
        Evidence(
            source=item.menu.source, observed=f"line {k.line}: {k.command} {k.path} {k.raw_args}".rstrip()
        )
    )
    chain.summary = f"default entry {item.title!r} ({index}) from {item.menu.source}:{k.line}"


def _bls_entry(item: _Item, index: str, run: GrubRun, chain: _Chain) -> None:
    bls, call = item.bls, item.call
    assert bls is not None and call is not None and item.bls_path is not None
    path = item.bls_path
    if bls.grub_stop_line is not None:
        chain.problems.append(
            f"{path}:{bls.grub_stop_line}: blank line or key without a value: GRUB's blscfg stops "
            "reading the entry there and ignores the lines after it"
        )
    linux = bls.grub_values("linux")
    efi = bls.grub_values("efi")
    options = bls.grub_values("options")
    version = bls.grub_values("version")
    kernel = linux[0][0] if linux else (efi[0][0] if efi else None)
    if len(options) > 1:
        chain.problems.append(
            f"{path}: {len(options)} options lines: GRUB's blscfg uses only the first "
            f"(line {options[0][1]}); systemd-boot would join them"
        )
    raw = options[0][0] if options else ""
    where_opts = f"{path}:{options[0][1]}" if options else path
    env_note = ""
    if not options:
        raw = "$default_kernelopts"  # what blscfg falls back to
        chain.problems.append(f"{path}: no options line: blscfg uses $default_kernelopts")
    cmdline: str | None
    if not linux:
        cmdline = None
        chain.problems.append(
            f"{path}: 'efi' entry (unified kernel image): its command line is inside the image"
        )
        used: tuple[str, ...] = ()
        undefined: tuple[str, ...] = ()
    else:
        cmdline, used, undefined = expand_bls_options(raw, call.env)
    chain.unresolved.extend(undefined)
    chain.variables = used
    by_file: dict[str, list[str]] = {}
    for var in used:
        if var in run.uncertain:
            chain.problems.append(
                f"${var} is also set under an undecidable condition at {run.uncertain[var]}"
            )
        origin = call.origins.get(var)
        if var in undefined or origin is None:
            continue
        where = origin.split(" (load_env")[0]  # "/boot/grub2/grubenv:3" or "/boot/grub2/grub.cfg:110"
        file, _, line = where.rpartition(":")
        by_file.setdefault(file, []).append(f"${var}")
        chain.provenance.append(Evidence(source=file, observed=f"line {line}: {var}={call.env.get(var, '')}"))
    for var in undefined:
        if var in OPTIONAL_VARIABLES:
            chain.problems.append(
                f"{where_opts}: ${var} is not defined anywhere: it expands to nothing (tuned #704)"
            )
        else:
            chain.problems.append(
                f"{where_opts}: ${var} is not defined in grubenv or grub.cfg: GRUB expands it to nothing, "
                "so the entry's command line is incomplete"
            )
    if by_file:
        env_note = ", options expanded from " + "; ".join(f"{f} ({', '.join(v)})" for f, v in by_file.items())
    title = item.title
    chain.entry = BootEntry(
        title=title,
        kernel=kernel,
        version=version[0][0] if version else _version_of(kernel),
        options=raw,
        cmdline=cmdline,
        source=where_opts,
        entry_id=item.entry_id,
        index=index,
        kind="bls",
        recovery=_is_recovery(title, item.entry_id, kernel, raw),
    )
    chain.provenance.append(
        Evidence(
            source=path,
            observed=f"BLS entry {item.entry_id} (blscfg at {call.source}:{call.line}): options {raw}",
        )
    )
    chain.summary = f"default entry {title!r} from {path}{env_note}"


def _resolve_legacy(reader: _Reader, path: str, chain: _Chain) -> None:
    chain.found = True
    chain.loader = "grub-legacy"
    real = reader.real_path(path)
    shown = path if real == path else f"{path} -> {real}"
    chain.config_path = real
    chain.family_hint = f"edit {real}"
    text = reader.text(path)
    if text is None:
        chain.problems.append(f"{path}: cannot be read")
        return
    cfg = parse_legacy_grub(text)
    chain.problems.extend(f"{real}: {p}" for p in cfg.problems)
    if not cfg.entries:
        chain.problems.append(f"{real}: no title entries")
        return
    idx = 0
    how = "default not set: first entry"
    if cfg.default == "saved":
        dfile = posixpath.join(posixpath.dirname(real), "default")
        dtext = reader.text(dfile)
        saved = parse_legacy_default_file(dtext) if dtext is not None else None
        if saved is None:
            chain.problems.append(
                f"{real}: default=saved but {dfile} has no saved entry: GRUB uses the first"
            )
        else:
            idx = saved
            how = f"default=saved, {dfile}: {saved}"
    elif cfg.default is not None:
        if cfg.default.isdigit():
            idx = int(cfg.default)
            how = f"default={cfg.default} (line {cfg.default_line})"
        else:
            chain.problems.append(
                f"{real}:{cfg.default_line}: default={cfg.default!r} is not an entry number"
            )
    if idx >= len(cfg.entries):
        chain.problems.append(
            f"{real}: default {idx} is beyond the {len(cfg.entries)} entries: the first is used"
        )
        idx = 0
    e = cfg.entries[idx]
    kernel, args, line, hypervisor = e.kernel, e.kernel_args, e.kernel_line, None
    if e.kernel and "xen" in e.kernel.rsplit("/", 1)[-1].lower() and e.modules:
        hypervisor = f"kernel {e.kernel} {e.kernel_args}".rstrip()
        kernel, args, line = e.modules[0]
        chain.problems.append(
            f"{real}:{line}: Xen entry: the hypervisor gets '{hypervisor}'; the parameters here are the "
            "dom0 kernel's, from its module line"
        )
    chain.provenance.append(
        Evidence(source=shown, observed=f"{how} -> title {e.title!r}; kernel {kernel} {args}")
    )
    chain.entry = BootEntry(
        title=e.title,
        kernel=kernel,
        version=_version_of(kernel),
        options=args,
        cmdline=args if kernel else None,
        source=f"{real}:{line or e.line}",
        entry_id=None,
        index=str(idx),
        kind="legacy",
        recovery=_is_recovery(e.title, None, kernel, args),
        hypervisor=hypervisor,
    )
    if kernel is None:
        chain.problems.append(f"{real}:{e.line}: the default entry has no kernel line")
    chain.summary = f"default entry {e.title!r} (default {idx}) from {real}"


_ASSUMED_BLS = """load_env -f /boot/grub2/grubenv
load_env -f /boot/grub/grubenv
set default="${saved_entry}"
blscfg
"""


def _resolve_bls_only(reader: _Reader, files: _GrubFiles, chain: _Chain, platform: str | None) -> None:
    chain.found = True
    chain.problems.append(
        "BLS entries without any grub.cfg: read as GRUB with blscfg would (grubenv for the default "
        "and variables); without a grub.cfg GRUB itself has nothing to run"
    )
    label = "(no grub.cfg)"
    run = run_grub_script(parse_grub_script(_ASSUMED_BLS), label=label, files=files, platform=platform)
    chain.problems.extend(run.problems)
    chain.loader = "grub2-bls"
    items = _expand_menu(reader, run, chain)
    if not items:
        return
    item, index = _select(items, run.env.get("default", ""), chain)
    if item is not None:
        _bls_entry(item, index, run, chain)
    chain.family_hint = "grubby"
    chain.config_path = item.bls_path if item else None


def _resolve_chain(reader: _Reader, firmware: str) -> _Chain:
    chain = _Chain(firmware=firmware)
    files = _GrubFiles(reader)
    platform = "efi" if firmware == "efi" else "pc"
    if firmware == "efi":
        esp_cfgs = _find_esp_files(reader, "grub.cfg")
        sdboot, esp_entries = _systemd_boot_evidence(reader)
        if esp_cfgs:
            path = _pick_esp_config(reader, esp_cfgs, chain)
            if sdboot:
                chain.problems.append(
                    "systemd-boot is installed too (" + ", ".join(sdboot) + "); GRUB is evaluated"
                )
            _resolve_grub2(reader, files, path, chain, platform)
            return chain
        legacy = _find_esp_files(reader, "grub.conf")
        if legacy:
            _resolve_legacy(reader, legacy[0], chain)
            return chain
        if sdboot:
            return _systemd_boot(chain, sdboot)
        for path in GRUB2_CONFIGS:
            if reader.is_file(path):
                chain.provenance.append(
                    Evidence(
                        source=path, observed="no grub.cfg on the ESP: GRUB's built-in prefix reads this one"
                    )
                )
                _resolve_grub2(reader, files, path, chain, platform)
                return chain
        if esp_entries:
            return _systemd_boot(chain, esp_entries)
    else:
        present = [p for p in GRUB2_CONFIGS if reader.is_file(p)]
        if present:
            if len(present) > 1:
                chain.problems.append(
                    f"both {present[0]} and {present[1]} exist: {present[0]} is used (GRUB's prefix decides)"
                )
            _resolve_grub2(reader, files, present[0], chain, platform)
            legacy_left = [p for p in LEGACY_CONFIGS if reader.is_file(p)]
            if legacy_left:
                chain.problems.append(f"legacy GRUB configuration also present ({legacy_left[0]}); not used")
            return chain
        for path in LEGACY_CONFIGS:
            if reader.is_file(path):
                _resolve_legacy(reader, path, chain)
                return chain
    if _bls_files(reader, None)[1]:
        _resolve_bls_only(reader, files, chain, platform)
    return chain


# -- regeneration inputs --------------------------------------------------------------------------------


def _read_inputs(reader: _Reader) -> tuple[list[CmdlineInput], list[str]]:
    problems: list[str] = []
    inputs: list[CmdlineInput] = []
    env: dict[str, ShellVar] = {}
    files = [DEFAULT_GRUB] + [
        f"{DEFAULT_GRUB_D}/{n}" for n in sorted(reader.listdir(DEFAULT_GRUB_D)) if n.endswith(".cfg")
    ]
    seen_any = False
    for path in files:
        text = reader.text(path)
        if text is None:
            continue
        seen_any = True
        try:
            parsed = parse_shell_vars(text, env=env, tag=path)
        except ParseError as exc:
            problems.append(f"{path}:{exc.line or '?'}: {exc.problem}; not used")
            continue
        problems.extend(f"{path}: {p}" for p in parsed.problems)
        env = parsed.variables
    if seen_any:
        for name in ("GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT"):
            var = env.get(name)
            if var is None:
                continue
            if var.dynamic:
                problems.append(
                    f"{name} ({', '.join(var.origins)}) uses a command substitution hostaudit does not run"
                )
            inputs.append(
                CmdlineInput(
                    name=name,
                    value=var.value,
                    params=tuple(tokenize(var.value)),
                    source=", ".join(var.origins),
                )
            )
    text = reader.text(KERNEL_CMDLINE)
    if text is not None:
        value = parse_kernel_cmdline_file(text)
        inputs.append(
            CmdlineInput(
                name=KERNEL_CMDLINE, value=value, params=tuple(tokenize(value)), source=f"{KERNEL_CMDLINE}:1"
            )
        )
    text = reader.text(TUNED_BOOTCMDLINE)
    if text is not None:
        try:
            tuned = parse_shell_vars(text, tag=TUNED_BOOTCMDLINE)
        except ParseError as exc:
            problems.append(f"{TUNED_BOOTCMDLINE}:{exc.line or '?'}: {exc.problem}; not used")
        else:
            var = tuned.variables.get("TUNED_BOOT_CMDLINE")
            if var is not None:
                inputs.append(
                    CmdlineInput(
                        name="TUNED_BOOT_CMDLINE",
                        value=var.value,
                        params=tuple(tokenize(var.value)),
                        source=", ".join(var.origins),
                    )
                )
    return inputs, problems


def _applicability(
    inp: CmdlineInput, loader: str | None, entry: BootEntry | None, variables: tuple[str, ...]
) -> CmdlineInput:
    applies, note = False, ""
    if inp.name == "GRUB_CMDLINE_LINUX":
        if loader == "grub2":
            applies, note = True, "written into every generated entry by grub-mkconfig"
        elif loader == "grub2-bls":
            applies = True
            note = (
                "BLS: seeds kernelopts/entry options once; grub2-mkconfig does not rewrite BLS options "
                "(use grubby --update-kernel=ALL --args)"
            )
        else:
            note = f"not read by {loader or 'any boot loader found'}"
    elif inp.name == "GRUB_CMDLINE_LINUX_DEFAULT":
        if loader in ("grub2", "grub2-bls") and entry is not None and entry.recovery:
            note = "not applied to recovery/rescue entries"
        elif loader == "grub2":
            applies, note = True, "written into normal (non-recovery) entries by grub-mkconfig"
        elif loader == "grub2-bls":
            applies, note = True, "BLS: seeds kernelopts/entry options once, like GRUB_CMDLINE_LINUX"
        else:
            note = f"not read by {loader or 'any boot loader found'}"
    elif inp.name == KERNEL_CMDLINE:
        if loader in ("grub2-bls", "systemd-boot"):
            applies, note = True, "baked into the BLS entry when a kernel is installed (kernel-install)"
        else:
            note = "only kernel-install reads it; grub-mkconfig does not"
    elif inp.name == "TUNED_BOOT_CMDLINE":
        if "tuned_params" in variables:
            applies, note = True, "reaches the entry through $tuned_params"
        else:
            note = "the default entry does not reference $tuned_params"
    return CmdlineInput(
        name=inp.name, value=inp.value, params=inp.params, source=inp.source, applies=applies, note=note
    )


def _value(p: Param) -> str:
    return "" if p.value is None else p.value


def _stale(inputs: list[CmdlineInput], params: list[Param]) -> list[StaleParam]:
    out: list[StaleParam] = []
    for inp in inputs:
        if not inp.applies:
            continue
        wanted: dict[str, list[Param]] = {}
        for p in inp.params:
            if "$" in p.name:  # a GRUB variable reference, expanded at boot
                continue
            wanted.setdefault(p.key, []).append(p)
        for key, ps in wanted.items():
            want_vals = [_value(p) for p in ps]
            have_vals = values(params, key)
            name = ps[0].name
            if key in ORDERED_PARAMS or len(ps) > 1:
                if key in ORDERED_PARAMS:
                    ok = want_vals == have_vals
                else:
                    it = iter(have_vals)
                    ok = all(v in it for v in want_vals)  # in order, others may be interleaved
                if not ok:
                    out.append(
                        StaleParam(
                            name, " ".join(want_vals), " ".join(have_vals) if have_vals else None, inp.source
                        )
                    )
            else:
                have = have_vals[-1] if have_vals else None
                if have != want_vals[-1]:
                    out.append(StaleParam(name, want_vals[-1], have, inp.source))
    return out


# -- the resolver ------------------------------------------------------------------------------------


def _same(a: _Chain, b: _Chain) -> bool:
    return (
        a.entry is not None
        and b.entry is not None
        and a.entry.kernel == b.entry.kernel
        and a.entry.cmdline == b.entry.cmdline
    )


def resolve_boot_config(fs: FileSource, *, efi: bool | None = None) -> BootConfig:
    """Which kernel command line the next boot of the host under ``fs`` uses.

    ``efi`` is True/False on a live host (``/sys/firmware/efi`` exists or not) and None on an image
    or snapshot: both the EFI and the BIOS chains are then evaluated and the result says which one
    was used. A malformed file is reported in ``problems`` and the other sources are still used.
    """
    reader = _Reader(fs)
    problems: list[str] = []
    chains = {"efi": _resolve_chain(reader, "efi"), "bios": _resolve_chain(reader, "bios")}
    chosen: _Chain | None = None
    note = ""
    if efi is not None:
        pref, other = ("efi", "bios") if efi else ("bios", "efi")
        if chains[pref].found:
            chosen = chains[pref]
            note = f"{'UEFI' if efi else 'BIOS'} boot (given)"
        elif chains[other].found:
            chosen = chains[other]
            mode = "UEFI" if efi else "BIOS"
            note = f"{mode} boot given, but only the {other.upper()} chain has a configuration"
            problems.append(
                f"no boot configuration for {pref.upper()} boot; the {other.upper()} chain is used"
            )
    else:
        e, b = chains["efi"], chains["bios"]
        if e.coherent and b.coherent:
            chosen = e
            if _same(e, b):
                note = "firmware mode unknown: the EFI and BIOS chains agree"
            else:
                note = "firmware mode unknown: EFI chain used"
                problems.append(
                    "firmware mode unknown and the chains disagree: EFI boots "
                    f"{e.entry.title!r} ({e.config_path}), BIOS boots {b.entry.title!r} ({b.config_path}); "  # type: ignore[union-attr]
                    "the EFI result is reported"
                )
        elif e.coherent or b.coherent:
            chosen = e if e.coherent else b
            other_chain = b if e.coherent else e
            note = f"firmware mode unknown: only the {chosen.firmware.upper()} chain resolves"
            if other_chain.found:
                problems.extend(f"{other_chain.firmware.upper()} chain: {p}" for p in other_chain.problems)
        elif e.found or b.found:
            chosen = e if e.found else b
            note = f"firmware mode unknown: {chosen.firmware.upper()} chain"

    inputs_raw, input_problems = _read_inputs(reader)
    if chosen is None:
        inputs = [_applicability(i, None, None, ()) for i in inputs_raw]
        return BootConfig(
            loader=None,
            entry=None,
            summary=f"no boot configuration found under {fs.describe()}: boot parameters unknown",
            problems=tuple(problems + input_problems + reader.problems),
            inputs=tuple(inputs),
        )
    entry = chosen.entry
    params = tokenize(entry.cmdline) if entry is not None and entry.cmdline is not None else []
    inputs = [_applicability(i, chosen.loader, entry, chosen.variables) for i in inputs_raw]
    stale = _stale(inputs, params) if entry is not None and entry.cmdline is not None else []
    problems = chosen.problems + problems + input_problems + suspicious_params(params)
    for p in reader.problems:
        if p not in problems:
            problems.append(p)
    unresolved = tuple(dict.fromkeys(chosen.unresolved))
    summary = chosen.summary or (
        f"{chosen.loader} configuration at {chosen.config_path}: no default entry could be determined"
        if chosen.loader
        else "no boot configuration"
    )
    summary += f" [{note}]" if note else ""
    if entry is None or entry.cmdline is None or any(v not in OPTIONAL_VARIABLES for v in unresolved):
        summary += "; boot parameters unknown"
    return BootConfig(
        loader=chosen.loader,
        entry=entry,
        params=tuple(params),
        provenance=tuple(chosen.provenance),
        summary=summary,
        unresolved=unresolved,
        problems=tuple(dict.fromkeys(problems)),
        inputs=tuple(inputs),
        stale=tuple(stale),
        family_hint=chosen.family_hint,
        firmware=chosen.firmware,
        config_path=chosen.config_path,
    )
