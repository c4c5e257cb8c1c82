"""Which kernel command line the next boot uses, where it comes from, and what regenerating the
boot configuration would ask for.

The boot loader is located by evidence (files present), never by distribution version: GRUB 2 with
menu entries or BLS entries (``blscfg``), EFI stubs that redirect to another ``grub.cfg``, legacy
GRUB, and systemd-boot (detected, not evaluated). Regeneration inputs (``/etc/default/grub``,
``/etc/kernel/cmdline``, tuned's ``bootcmdline``) are reported beside the effective entry, never in
its place: a difference is a "stale configuration" finding.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

from audit.boot.inputs import applicability, read_inputs, stale_params
from audit.boot.model import (
    BLS_DIRS,
    DEFAULT_GRUB,
    ESP_ROOTS,
    GRUB2_CONFIGS,
    LEGACY_CONFIGS,
    OPTIONAL_VARIABLES,
    BootConfig,
    BootEntry,
    CmdlineInput,
    suspicious_params,
)
from audit.boot.predict import Prediction, kernelopts_prediction, predict_next_boot
from audit.boot.reader import GrubFilesInRoot, Reader, grub_candidates, parse_script, run_script
from audit.errors import ParseError
from audit.host.fs import FileSource
from audit.model import Evidence, replace
from audit.parsers import grub  # each GRUB parser loads on first use: none on a host without GRUB
from audit.parsers.cmdline import tokenize
from audit.record import Record

# -- one chain (EFI or BIOS) --------------------------------------------------------------------------


class _Chain:
    """One boot chain (EFI or BIOS) as it is followed."""

    __slots__ = ("config_path", "entry", "family_hint", "firmware", "found", "loader", "problems", "provenance",
                 "summary", "unresolved", "variables")

    def __init__(self, firmware: str) -> None:
        self.firmware = firmware
        self.loader: str | None = None
        self.found = False
        self.entry: BootEntry | None = None
        self.provenance: list[Evidence] = []
        self.problems: list[str] = []
        self.unresolved: list[str] = []
        self.config_path: str | None = None
        self.family_hint: str | None = None
        self.variables: tuple[str, ...] = ()  # variables the entry's options reference
        self.summary = ""

    @property
    def coherent(self) -> bool:
        return self.entry is not None and self.entry.cmdline is not None


class _Item(Record):
    """A concrete menu item once blscfg entries are in place."""

    kind: str  # "menuentry", "submenu", "bls"
    title: str
    entry_id: str | None
    conditional: bool
    menu: grub.MenuEntry | None = None
    children: Sequence[_Item] = ()
    bls: grub.BlsEntry | None = None
    bls_path: str | None = None
    call: grub.BlscfgCall | None = None
    source: str = ""
    #: the GRUB context the entry boots in (a submenu's); None: the top level's (grub.GrubRun.env)
    context: grub.BootContext | None = None


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


def _family_for_grub2(reader: Reader, config: str, loader: str) -> str:
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


def _find_esp_files(reader: Reader, name: str) -> list[str]:
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


def _has_efi_binary(reader: Reader, path: str) -> bool:
    vdir = posixpath.dirname(path)
    return any(
        n.lower().endswith(".efi") and n.lower().startswith(("grub", "shim")) for n in reader.listdir(vdir)
    )


def _pick_esp_config(reader: Reader, paths: list[str], chain: _Chain) -> str:
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


def _systemd_boot_evidence(reader: Reader) -> tuple[list[str], list[str]]:
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


def _bls_files(reader: Reader, blsdir: str | None) -> tuple[str | None, list[str]]:
    dirs = grub_candidates(blsdir) if blsdir else list(BLS_DIRS)
    for d in dirs:
        if reader.fs.kind(d) == "dir":
            names = [
                n for n in reader.listdir(d) if n.endswith(".conf") and not n.startswith(".") and len(n) > 5
            ]
            return d, names
    return None, []


def _expand_menu(reader: Reader, run: grub.GrubRun, chain: _Chain) -> list[_Item]:
    def build(items: tuple[grub.MenuItem, ...], context: grub.BootContext | None) -> list[_Item]:
        out: list[_Item] = []
        for item in items:
            if isinstance(item, grub.MenuEntry):
                out.append(
                    _Item(
                        kind="menuentry",
                        title=item.title,
                        entry_id=item.entry_id,
                        conditional=item.conditional,
                        menu=item,
                        source=f"{item.source}:{item.line}",
                        context=context,
                    )
                )
            elif isinstance(item, grub.Submenu):
                out.append(
                    _Item(
                        kind="submenu",
                        title=item.title,
                        entry_id=item.entry_id,
                        conditional=item.conditional,
                        children=build(item.children, item.context),
                        source=f"{item.source}:{item.line}",
                    )
                )
            else:
                out.extend(_bls_items(reader, item, chain, context))
        return out

    return build(run.menu, None)


def _bls_items(reader: Reader, call: grub.BlscfgCall, chain: _Chain, context: grub.BootContext | None) -> list[_Item]:
    d, names = _bls_files(reader, call.blsdir)
    where = f"{call.source}:{call.line}"
    if d is None or not names:
        chain.problems.append(f"{where}: blscfg finds no entries in {call.blsdir or ' or '.join(BLS_DIRS)}")
        return []
    stems = {n[:-5]: n for n in names}
    items: list[_Item] = []
    for stem in grub.sort_bls_names(stems, source=d):
        path = f"{d}/{stems[stem]}"
        text = reader.text(path)
        if text is None:
            continue
        try:
            bls = grub.parse_bls_entry(text)
        except grub.GrubLimitError as exc:  # a bound ran out: an error naming the file, never "GRUB skips it"
            raise exc.at(path) from None
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
                context=context,
            )
        )
    return items


def _matches(item: _Item, want: str) -> bool:
    return want in (item.title, item.entry_id)


def _select(items: list[_Item], default: str, chain: _Chain) -> tuple[_Item | None, str]:
    """GRUB's choice of the default entry: index, title or id, ``>`` descends into submenus; an
    unknown value falls back to the first entry."""
    parts = grub.split_default(default) if default else ["0"]
    level = items
    path: list[int] = []
    chosen: _Item | None = None
    for depth, part in enumerate(parts):
        if not level:
            chain.problems.append("the default points into an empty submenu")
            return None, ">".join(map(str, path))
        idx = grub.parse_grub_number(part)
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


def _default_provenance(run: grub.GrubRun) -> str:
    """Where ``default`` came from: its assignment, and the grubenv variable it was expanded from
    (only when the assignment expanded one: an equal literal does not make it come from grubenv)."""
    if "default" not in run.env:
        return "default not set: GRUB boots the first entry"
    default = run.env["default"]
    origin = run.origins.get("default", "GRUB start-up")
    via = ""
    used = run.derived.get("default", ())
    for var in ("next_entry", "saved_entry"):
        if var in used:
            where = run.origins.get(var)
            via = f" = ${{{var}}} from {where.split(' (load_env')[0]}" if where else f" (${{{var}}} is not set)"
            if var == "next_entry":
                via += " (one-shot: the boot after the next one uses saved_entry again)"
            break
    return f"default={default!r} (set at {origin}){via}"


def _resolve_grub2(
    reader: Reader, files: GrubFilesInRoot, path: str, chain: _Chain, platform: str | None
) -> None:
    chain.found = True
    chain.loader = "grub2"
    text = reader.text(path)
    if text is None:
        chain.problems.append(f"{path}: cannot be read")
        return
    try:
        script = parse_script(text)
    except grub.GrubLimitError as exc:  # a bound ran out: an error naming the file, not "unknown"
        raise exc.at(path) from None
    except ParseError as exc:
        chain.problems.append(f"{path}:{exc.line or '?'}: {exc.problem}; GRUB configuration not usable")
        chain.config_path = path
        return
    d = posixpath.dirname(path)
    run = run_script(script, label=path, files=files, platform=platform, env={"prefix": d, "config_directory": d})
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
    item: _Item, index: str, run: grub.GrubRun, files: GrubFilesInRoot, platform: str | None, chain: _Chain
) -> None:
    assert item.menu is not None
    # the body runs when the entry boots, in the context of its menu as the whole file left it
    ctx = item.context
    env, uncertain, dropped = (ctx.env, ctx.uncertain, ctx.dropped) if ctx else (run.env, run.uncertain, run.dropped)
    k = grub.entry_kernel(
        item.menu, env=env, files=files, platform=platform, functions=run.functions, uncertain=uncertain
    )
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
        if var in uncertain:
            chain.problems.append(f"${var} is also set under an undecidable condition at {uncertain[var]}")
    for var, why in k.uncertain_variables:
        if var in uncertain:
            continue
        root = why[1:] if why.startswith("$") else ""
        where = f" ({root} is set under an undecidable condition at {uncertain[root]})" if root in uncertain else ""
        chain.problems.append(
            f"{item.menu.source}:{k.line}: ${var} is set when the entry boots from a value that depends on "
            f"{why}, which hostaudit cannot evaluate{where}"
        )
    for var in k.undefined:
        if var in dropped:
            chain.problems.append(_dropped_problem(f"{item.menu.source}:{k.line}", var, dropped[var]))
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


def _dropped_problem(where: str, var: str, why: str) -> str:
    return (
        f"{where}: ${var} is {why}: upstream GRUB copies only exported variables into a new context "
        "(grub-core/normal/context.c), so it is undefined here; Fedora/RHEL builds copy every variable"
    )


def _set_after_blscfg(var: str, env: dict[str, str], origins: dict[str, str]) -> str | None:
    """Where ``var`` has the value the file leaves it with, when that is not the value ``blscfg`` saw:
    "<file>:<line>" or "<grubenv>:<line> (load_env at <file>:<line>)"; None when the file leaves it unset."""
    if var not in env:
        return None
    return origins.get(var) or "later in the file"


def _bls_entry(item: _Item, index: str, run: grub.GrubRun, chain: _Chain) -> None:
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
        cmdline, used, undefined = grub.expand_bls_options(raw, call.env)
    ctx = item.context
    final_env, final_origins, uncertain = (
        (ctx.env, ctx.origins, ctx.uncertain) if ctx else (run.env, run.origins, run.uncertain)
    )
    # GRUB's blscfg expands the options where it stands, so a variable the file sets only after it is
    # not unknown: the entry certainly boots without it
    late = {v: w for v in undefined if (w := _set_after_blscfg(v, final_env, final_origins)) is not None}
    chain.unresolved.extend(v for v in undefined if v not in late)
    chain.variables = used
    by_file: dict[str, list[str]] = {}
    for var in used:
        if var in uncertain:
            chain.problems.append(f"${var} is also set under an undecidable condition at {uncertain[var]}")
        origin = call.origins.get(var)
        if var in undefined or origin is None:
            continue
        if var in final_env and final_env[var] != call.env.get(var):
            chain.problems.append(
                f"{where_opts}: ${var} is {call.env.get(var, '')!r} where blscfg runs ({call.source}:{call.line}); "
                f"it is set to {final_env[var]!r} only afterwards, at {final_origins.get(var, '?')}, which this "
                "entry does not get: GRUB's blscfg expands an entry's options when it creates the entry"
            )
        where = origin.split(" (load_env")[0]  # "/boot/grub2/grubenv:3" or "/boot/grub2/grub.cfg:110"
        file, _, line = where.rpartition(":")
        by_file.setdefault(file, []).append(f"${var}")
        chain.provenance.append(Evidence(source=file, observed=f"line {line}: {var}={call.env.get(var, '')}"))
    for var in undefined:
        if var in late:
            chain.problems.append(
                f"{where_opts}: ${var} is not set yet where blscfg runs ({call.source}:{call.line}); it is set "
                f"only afterwards, at {late[var]}, but GRUB's blscfg expands an entry's options when it creates "
                "the entry (expand_val in grub-core/commands/blscfg.c), so this entry boots without it"
            )
        elif var in call.dropped:
            chain.problems.append(_dropped_problem(where_opts, var, call.dropped[var]))
        elif var in OPTIONAL_VARIABLES:
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
    if late:
        env_note += "; " + ", ".join(f"${v}" for v in late) + " set only after blscfg: not in its command line"
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


def _resolve_legacy(reader: Reader, path: str, chain: _Chain) -> None:
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
    cfg = grub.parse_legacy_grub(text)
    chain.problems.extend(f"{real}: {p}" for p in cfg.problems)
    if not cfg.entries:
        chain.problems.append(f"{real}: no title entries")
        return
    idx = 0
    how = "default not set: first entry"
    if cfg.default == "saved":
        dfile = posixpath.join(posixpath.dirname(real), "default")
        dtext = reader.text(dfile)
        saved = grub.parse_legacy_default_file(dtext) if dtext is not None else None
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


def _resolve_bls_only(reader: Reader, files: GrubFilesInRoot, chain: _Chain, platform: str | None) -> None:
    chain.found = True
    chain.problems.append(
        "BLS entries without any grub.cfg: read as GRUB with blscfg would (grubenv for the default "
        "and variables); without a grub.cfg GRUB itself has nothing to run"
    )
    label = "(no grub.cfg)"
    run = run_script(parse_script(_ASSUMED_BLS), label=label, files=files, platform=platform)
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


def _resolve_chain(reader: Reader, firmware: str) -> _Chain:
    chain = _Chain(firmware=firmware)
    files = GrubFilesInRoot(reader)
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


# -- the resolver ------------------------------------------------------------------------------------


def _same(a: _Chain, b: _Chain) -> bool:
    return (
        a.entry is not None
        and b.entry is not None
        and a.entry.kernel == b.entry.kernel
        and a.entry.cmdline == b.entry.cmdline
    )


def resolve_boot_config(fs: FileSource, *, efi: bool | None = None, predict: bool = False) -> BootConfig:
    """Which kernel command line the next boot of the host under ``fs`` uses.

    ``efi`` is True/False on a live host (``/sys/firmware/efi`` exists or not) and None on an image
    or snapshot: both the EFI and the BIOS chains are then evaluated and the result says which one
    was used. A malformed file is reported in ``problems`` and the other sources are still used.

    ``predict`` (an image, which has no running kernel): where no configuration is generated yet,
    the result is what the generator will write from its inputs (``audit.boot.predict``), marked
    ``predicted``; and ``$kernelopts`` that nothing defines yet is filled as grub2-mkconfig will.
    """
    reader = Reader(fs)
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

    inputs_raw, input_problems = read_inputs(reader)
    if chosen is None:
        if predict:
            pred = predict_next_boot(reader)
            if pred is not None:
                return _predicted(pred, inputs_raw, problems + input_problems + reader.problems)
        inputs = [applicability(i, None, None, ()) for i in inputs_raw]
        return BootConfig(
            loader=None,
            entry=None,
            summary=f"no boot configuration found under {fs.describe()}: boot parameters unknown",
            problems=tuple(problems + input_problems + reader.problems),
            inputs=tuple(inputs),
        )
    entry = chosen.entry
    prediction = ""
    if predict and chosen.loader == "grub2-bls" and entry is not None and "kernelopts" in chosen.unresolved:
        filled = kernelopts_prediction(reader)
        if filled is not None:
            cmdline, _, _ = grub.expand_bls_options(entry.options, {"kernelopts": filled[0]})
            entry = replace(entry, cmdline=cmdline)
            chosen.unresolved = [v for v in chosen.unresolved if v != "kernelopts"]
            chosen.provenance.extend(filled[1])
            chosen.problems = [p for p in chosen.problems if "$kernelopts" not in p]
            chosen.summary += (f"; $kernelopts predicted: no grubenv defines it yet, grub2-mkconfig will store "
                               f"GRUB_CMDLINE_LINUX from {DEFAULT_GRUB} (root=<device> ro excluded)")
            prediction = "predicted: $kernelopts not stored yet (grub2-mkconfig will store GRUB_CMDLINE_LINUX)"
    params = tokenize(entry.cmdline) if entry is not None and entry.cmdline is not None else []
    inputs = [applicability(i, chosen.loader, entry, chosen.variables) for i in inputs_raw]
    stale = stale_params(inputs, params) if entry is not None and entry.cmdline is not None else []
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
        prediction=prediction,
    )


def _predicted(pred: Prediction, inputs_raw: list[CmdlineInput], problems: list[str]) -> BootConfig:
    """The BootConfig of a configuration that is not generated yet: what ``pred`` says it will be."""
    source = pred.evidence[0].source if pred.evidence else pred.config_path
    entry = BootEntry(
        title=f"the default entry {pred.generator} will write",
        kernel=pred.kernel,
        version=_version_of(pred.kernel),
        options=pred.args or "",
        cmdline=pred.args,
        source=source,
        kind="predicted",
    )
    params = tokenize(pred.args) if pred.args is not None else []
    inputs = [applicability(i, pred.loader, entry, ()) for i in inputs_raw]
    return BootConfig(
        loader=pred.loader,
        entry=entry,
        params=tuple(params),
        provenance=pred.evidence,
        summary=pred.summary,
        problems=tuple(dict.fromkeys([*pred.problems, *problems, *suspicious_params(params)])),
        inputs=tuple(inputs),
        family_hint=None,  # nothing to regenerate: the image's assembly generates it
        prediction=pred.note,
    )
