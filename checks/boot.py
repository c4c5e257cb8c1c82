"""The boot configuration itself: regenerated from its inputs, free of parameters the kernel ignores,
and booting the entry its saved default names."""

from __future__ import annotations

import re

from audit import hookimpl
from audit.boot.facts import boot_cmdline
from audit.boot.model import (
    BLS_DIRS,
    DEFAULT_GRUB,
    OPTIONAL_VARIABLES,
    TUNED_BOOTCMDLINE,
    WATCHED_PARAMS,
    BootConfig,
    BootEntry,
    glued_params,
    suspicious_params,
)
from audit.boot.modinfo import module_params
from audit.boot.params import ModuleParamsView, judge_params, load_table, series_of, with_accepted
from audit.errors import FactError, FactUnavailable, ParseError
from audit.host.core import Host
from audit.host.pagesizes import replay
from audit.model import Check, Evidence, Outcome, Severity, check, errored, passed, skipped, warned
from audit.parsers.cmdline import Param, canonical_name, repeated_params
from audit.policy import Policy
from audit.record import Record
from audit.remedy.cmdline import regenerate
from audit.remedy.target import FixTarget
from checks._common import hint, maybe_value, q
from checks._hugepages import page_sizes, release_for

INPUT_FILES = (DEFAULT_GRUB, TUNED_BOOTCMDLINE)  # and /etc/default/grub.d/*.cfg


def stale_tokens(cfg: BootConfig) -> list[str]:
    """The stale parameters as the inputs write them, in their order (huge page pairs stay pairs)."""
    keys = {canonical_name(s.name) for s in cfg.stale}
    tokens: list[str] = []
    for inp in cfg.inputs:
        if not inp.applies:
            continue
        for p in inp.params:
            tok = p.name if p.value is None else f"{p.name}={p.value}"
            if p.key in keys and "$" not in p.name and tok not in tokens:
                tokens.append(tok)
    return tokens


@check(
    "boot.drift",
    title="The boot configuration contains what its inputs ask for",
    severity=Severity.MEDIUM,
    reads=["/etc/default/grub", "/etc/default/grub.d/*.cfg", "/etc/kernel/cmdline", "/boot/grub*/grub.cfg",
           "/boot/loader/entries/*.conf", "/boot/grub*/grubenv"],
    example_fix=["update-grub   # RHEL: grub2-mkconfig -o /boot/grub2/grub.cfg, or grubby for BLS entries"],
)
def boot_drift(host: Host, policy: Policy) -> Outcome:
    """Editing /etc/default/grub changes nothing until the boot configuration is regenerated (and
    with BLS entries, grub2-mkconfig no longer rewrites their options): a parameter that is in the
    inputs but not in the entry the next boot uses is not in effect, however correct the file looks."""
    boot = host.fact(boot_cmdline)
    cfg = boot.config
    ev = [Evidence(source=boot.source, observed=boot.summary), *cfg.provenance]
    if cfg.loader is None or boot.params is None:  # unknown parameters never compare as "no drift"
        return skipped(f"nothing to compare: {boot.summary}", ev)
    if cfg.entry is not None and cfg.entry.kind == "predicted":
        # nothing is generated yet: the generator writes the entry from these very inputs
        return passed(f"not generated yet, so it cannot lag behind its inputs{boot.predicted}", ev)
    # a regeneration input the resolver could not parse is dropped from cfg.inputs: never "no drift"
    unusable = [p for p in cfg.problems if p.startswith(INPUT_FILES) and p.endswith("; not used")]
    if unusable:
        return errored("cannot compare the boot configuration with its inputs: " + "; ".join(unusable), ev)
    if not cfg.inputs:
        return passed(f"{cfg.loader}: no regeneration inputs (/etc/default/grub, /etc/kernel/cmdline) to compare",
                      ev)
    for inp in cfg.inputs:
        ev.append(Evidence(source=inp.source, observed=f"{inp.name}={inp.value!r}" + (f" ({inp.note})" if inp.note
                                                                                       else "")))
    if not cfg.stale:
        return passed(f"the default entry has every parameter its inputs ask for ({cfg.loader})", ev)
    lines = []
    for s in cfg.stale:
        now = "absent" if s.effective is None else f"'{s.effective}'"
        lines.append(f"{s.name}: {s.source} wants '{s.wanted}', the next boot has {now}")
        ev.append(Evidence(source=s.source, observed=f"{s.name}={s.wanted}",
                           expected=f"in {boot.source}" if s.effective is None else f"{s.name}={s.effective}"))
    return warned("boot configuration is stale: regenerate it (" + "; ".join(lines) + ")", ev,
                  fix=regenerate(FixTarget.of(host), stale_tokens(cfg)), reboot=True,
                  notes="The inputs are not the effective configuration until the loader's config is regenerated.")


def _module_evidence(params: list[Param], modules: ModuleParamsView) -> list[Evidence]:
    """What the modules named by ``module.param`` tokens declare (or why they were not judged)."""
    named = dict.fromkeys(p.key.partition(".")[0] for p in params if "." in p.key)
    ev = []
    for m in named:
        if m in modules.declared and m in modules.sources:
            ev.append(Evidence(source=modules.sources[m], observed=f"module {m} declares: "
                               + (", ".join(sorted(modules.declared[m])) or "no parameters")[:400]))
        elif m in modules.unjudged:
            ev.append(Evidence(source=modules.unjudged[m].split(":", 1)[0],
                               observed=f"{m}.* parameters not judged: {modules.unjudged[m]}"))
    return ev


@check(
    "boot.params",
    title="The kernel command line has no ignored or misspelt parameters",
    severity=Severity.LOW,
    reads=["/proc/cmdline", "boot configuration", "kernel release", "KVM modules' .modinfo"],
    example_fix=["grubby --update-kernel=ALL --remove-args=transparent_hugepages --args=transparent_hugepage=madvise"],
)
def boot_params(host: Host, policy: Policy) -> Outcome:
    """The kernel silently ignores parameters it does not know (transparent_hugepages= with an s),
    values its parser does not act on (amd_iommu=on, iommu=1), huge page sizes given in the wrong
    order or that this CPU cannot have (hugepagesz=1G without pdpe1gb, and the hugepages= after
    it), and variables a boot loader could not expand: the setting then looks configured but is
    not. Names and values are judged against the kernel's own kernel-parameters.txt and source of
    the releases in hostaudit's table; module.param names against what the module declares."""
    ev: list[Evidence] = []
    problems: list[str] = []
    infos: list[str] = []
    boot = host.fact(boot_cmdline)
    sources = []
    # an undefined variable such as $kernelopts leaves the next boot's parameters unknown (params is
    # None), which is exactly when it must be reported
    for var in boot.config.unresolved:
        if var in OPTIONAL_VARIABLES:  # tuned's variables, empty on purpose when tuned sets nothing
            ev.append(Evidence(source=boot.source, observed=f"${var} is not defined: expands to nothing "
                               "(harmless: tuned's boot parameters, none set)"))
            continue
        problems.append(f"next boot: ${var} is not defined where the default entry boots, so it expands to "
                        "nothing")
        ev.append(Evidence(source=boot.source, observed=boot.summary))
    if boot.params is not None:
        sources.append((boot.source, list(boot.params), "next boot"))
        harmless = tuple(f"${v} is not defined anywhere: it expands to nothing" for v in OPTIONAL_VARIABLES)
        # the resolver's own near-miss lines know no kernel release: judged again below with it
        unversioned = set(suspicious_params(boot.config.params))
        saved = saved_default(boot.config)  # boot.saved_entry's finding, not a parameter problem
        own = set(saved.problems) if saved is not None else set()
        problems += [f"next boot: {p}" for p in boot.config.problems
                     if not any(h in p for h in harmless) and p not in unversioned and p not in own]
    running = maybe_value(lambda: host.cmdline) if host.has_runtime else None
    if running is not None:
        sources.append(("/proc/cmdline", running, "running kernel"))
    if not sources and not problems:
        return skipped(f"no command line to check: {boot.summary}")
    table = load_table()
    modules: ModuleParamsView | None = None
    if any("." in p.key and not table.known(p.key) for _, params, _ in sources for p in params):
        modules = hint(lambda: host.fact(module_params))
    for source, params, label in sources:
        ev.append(Evidence(source=source, observed=" ".join(p.name if p.value is None else f"{p.name}={p.value}"
                                                            for p in params)[:500]))
        release = release_for(host, boot, label)
        for f in judge_params(params, release, modules=modules, watched=WATCHED_PARAMS, table=table):
            (problems if f.level == "warn" else infos).append(f"{label}: {f.message}")
        problems += [f"{label}: {m}" for m in glued_params(params)]
        # the huge page parameters as this kernel reads them on this CPU: a size it rejects (1G
        # without pdpe1gb) and what becomes of the hugepages= after it (audit.host.pagesizes)
        hp = replay(params, page_sizes(host), release)
        problems += [f"{label}: {with_accepted(m, table)}" for m in hp.problems]
        infos += [f"{label}: {m}" for m in hp.conditional]
        for name, vals in repeated_params(params):
            problems.append(f"{label}: {name} is given {len(vals)} times ({', '.join(repr(v) for v in vals)}): the "
                            "kernel acts on one of them and overrides or ignores the others")
        literal = [p.name for p in params if "$" in p.name or (p.value and p.value.startswith("$"))]
        problems += [f"{label}: literal variable {n!r} reached the kernel" for n in literal]
        kernel = series_of(release)
        judged = f"kernel {release}" if release else "the newest release (kernel release unknown)"
        ev.append(Evidence(source="hostaudit's kernel parameter table",
                           observed=f"{label}: judged for {judged} against Linux "
                                    f"{', '.join(f'{a}.{b}' for a, b in table.series)}",
                           expected=None if kernel is None or kernel <= table.newest else
                           f"a table release as new as {kernel[0]}.{kernel[1]}"))
        if modules is not None:
            ev += _module_evidence(params, modules)
    infos = list(dict.fromkeys(infos))
    ev += [Evidence(source="hostaudit's kernel parameter table", observed=i) for i in infos]
    note = f" (info: {'; '.join(infos)})" if infos else ""
    if problems:
        return warned("; ".join(dict.fromkeys(problems)) + note, ev,
                      fix=["# correct the parameters with the tool that manages this boot configuration"],
                      notes="Misspelt or misordered parameters, and values the kernel does not act on, are ignored "
                            "without an error.")
    return passed("no ignored or misspelt parameters on " + " and ".join(label for _, _, label in sources)
                  + boot.predicted + note, ev)


# -- the saved default entry ------------------------------------------------------------------------

#: How the resolver says the default names nothing (audit/boot/resolver.py ``_select``) and where
#: it says the default came from (``_default_provenance``).
_NO_MATCH = re.compile(r"^default entry .* matches no menu entry|^default index \d+ is beyond the \d+ entries")
_FROM_ENV = re.compile(r"= \$\{(saved_entry|next_entry)\} from (\S+):(\d+)(?: |$)")
_NOT_SET = re.compile(r"\(\$\{saved_entry\} is not set\)")
_MENU_LINE = re.compile(r"""^\s*(menuentry|submenu)\s+(?:'([^']*)'|"([^"]*)")(.*)$""")
_ENTRY_ID = re.compile(r"""(?:\$menuentry_id_option|--id)[=\s]+(?:'([^']*)'|"([^"]*)"|(\S+))""")
#: Where grub-set-default and grub2-set-default write (grub-editenv's default block).
_DEFAULT_ENV = {"debian": "/boot/grub/grubenv"}
_DEFAULT_ENV_OTHER = "/boot/grub2/grubenv"


class SavedDefault(Record):
    """The default entry as GRUB takes it from its environment block."""

    variable: str  # "saved_entry" or "next_entry" (grub-reboot's one-shot)
    grubenv: str  # the environment block it came from
    line: int
    problems: tuple[str, ...]  # the resolver's lines saying it names no menu entry; empty: it does


def saved_default(cfg: BootConfig) -> SavedDefault | None:
    """Where the default entry came from grubenv (``set default="${saved_entry}"``), and whether it
    names nothing; None when the default is not taken from grubenv."""
    for ev in cfg.provenance:
        m = _FROM_ENV.search(ev.observed)
        if m:
            var, path, line = m.group(1), m.group(2), int(m.group(3))
            if not path.endswith("grubenv"):
                # the file cleared it after use (00_header: "set next_entry="): the block it was
                # loaded from is the load_env that set it
                loads = [e.source for e in cfg.provenance if e.observed.startswith("load_env:")
                         and f"{var}=" in e.observed]
                path, line = (loads[0], 0) if loads else (path, line)
            stale = tuple(p for p in cfg.problems if _NO_MATCH.match(p))
            return SavedDefault(variable=var, grubenv=path, line=line, problems=stale)
    return None


def _menu_entries(host: Host, cfg: BootConfig) -> list[str]:
    """The entries a saved default can name, for evidence: BLS ids in GRUB's order, or the
    menuentry/submenu titles (and ids) of the configuration file."""
    from audit.parsers.grub import sort_bls_names  # only where a saved default names nothing

    if cfg.loader == "grub2-bls":
        for d in BLS_DIRS:
            try:
                names = [n[:-5] for n in host.listdir(d) if n.endswith(".conf")]
            except (FactUnavailable, FactError):
                continue
            if names:
                return sort_bls_names(names)
        return []
    if not cfg.config_path:
        return []
    try:
        text = host.read_text(cfg.config_path)
    except (FactUnavailable, FactError):
        return []
    out = []
    for line in text.splitlines():
        m = _MENU_LINE.match(line)
        if m:
            title = m.group(2) if m.group(2) is not None else m.group(3)
            ident = _ENTRY_ID.search(m.group(4))
            ids = next((g for g in ident.groups() if g is not None), None) if ident else None
            out.append(f"{m.group(1)} {title!r}" + (f" (id {ids!r})" if ids else ""))
    return out


def _grubenv_value(host: Host, path: str, variable: str) -> tuple[str | None, int]:
    """The variable's value in the block at ``path`` and its line (0: not there)."""
    from audit.parsers.grub import parse_grubenv

    try:
        env = parse_grubenv(host.read_bytes(path))
    except (FactUnavailable, FactError, ParseError):
        return None, 0
    return env.values.get(variable), env.lines.get(variable, 0)


def set_saved_entry(target: FixTarget, grubenv: str, variable: str, entry: BootEntry) -> list[str]:
    """Point GRUB's saved default at ``entry``: grub(2)-set-default on a running host whose block is
    the default one, else grub(2)-editenv on the block itself (an image's under "$ROOT", with the
    tool of the machine running the script: the block's format is the same everywhere)."""
    debian = target.family == "debian"
    editenv = "grub-editenv" if debian else "grub2-editenv"
    if variable == "next_entry":  # grub-reboot's one-shot: taking it off leaves saved_entry in charge
        return [f"{editenv} {target.path(grubenv)} unset next_entry"]
    value = entry.index if ">" in entry.index else (entry.entry_id or entry.title)
    if not target.image and grubenv == _DEFAULT_ENV.get(target.family or "", _DEFAULT_ENV_OTHER):
        return [f"{'grub-set-default' if debian else 'grub2-set-default'} {q(value)}"]
    return [f"{editenv} {target.path(grubenv)} set saved_entry={q(value)}"]


@check(
    "boot.saved_entry",
    title="GRUB's saved default entry names an existing menu entry",
    severity=Severity.LOW,
    reads=["/boot/grub*/grubenv", "/boot/efi/EFI/*/grubenv", "/boot/grub*/grub.cfg", "/boot/loader/entries/*.conf"],
    example_fix=["grub2-set-default 0123456789abcdef0123456789abcdef-5.14.0-570.18.1.el9_6.x86_64",
                 "# Debian: grub-set-default; an image: grub2-editenv \"$ROOT\"/boot/grub2/grubenv set saved_entry=ID"],
)
def boot_saved_entry(host: Host, policy: Policy) -> Outcome:
    """With GRUB_DEFAULT=saved, and on every BLS system, GRUB boots the entry grubenv's saved_entry
    names. When that entry is gone (its kernel removed, its id changed) GRUB does not stop: it boots
    the first menu entry instead (grub-core/normal/menu.c, run_menu: a default that matches no entry
    falls back to entry 0), so the host boots a kernel nobody chose, with that entry's parameters."""
    boot = host.fact(boot_cmdline)
    cfg = boot.config
    if cfg.loader is None:
        return skipped(f"no boot configuration: {boot.summary}")
    if cfg.predicted:
        return passed(f"not generated yet: no saved default can name a missing entry{boot.predicted}",
                      list(cfg.provenance))
    if cfg.loader not in ("grub2", "grub2-bls"):
        return skipped(f"{cfg.loader} keeps no grubenv saved_entry")
    saved = saved_default(cfg)
    chosen = [e for e in cfg.provenance if "-> menu position" in e.observed]
    if saved is None:
        if any(_NOT_SET.search(e.observed) for e in chosen):
            return passed("grub.cfg takes the default from grubenv saved_entry, which is not set: GRUB boots the "
                          "first entry", chosen)
        return passed(f"{cfg.config_path or 'grub.cfg'} sets the default entry itself, not from grubenv: no saved "
                      "entry to go stale", chosen)
    value, line = _grubenv_value(host, saved.grubenv, saved.variable)
    shown = f"{saved.variable}={value!r}" if value is not None else saved.variable
    entry = cfg.entry
    ev = [Evidence(source=f"{saved.grubenv}:{line or saved.line}", observed=shown,
                   expected="an existing menu entry" if saved.problems else None), *chosen]
    if not saved.problems:
        what = f"{entry.title!r} ({entry.index})" if entry is not None else "an entry"
        return passed(f"grubenv {shown} names {what}", ev)
    entries = _menu_entries(host, cfg)
    where = "/boot/loader/entries" if cfg.loader == "grub2-bls" else (cfg.config_path or "grub.cfg")
    ev.append(Evidence(source=where, observed=f"{len(entries)} entries: " + "; ".join(entries)[:800]
                       if entries else "no entries found"))
    boots = (f"GRUB boots {entry.title!r} (menu position {entry.index}) instead" if entry is not None
             else "GRUB falls back to the first entry")
    once = " (grub-reboot's one-shot choice)" if saved.variable == "next_entry" else ""
    msg = f"{saved.grubenv}: {shown}{once} names no menu entry: {boots}"
    if entry is None:
        return warned(msg, ev, fix=["# set saved_entry to an existing entry (grub2-set-default / grub-set-default)"],
                      notes="GRUB falls back to the first menu entry when the saved default names none.")
    return warned(msg, ev, fix=set_saved_entry(FixTarget.of(host), saved.grubenv, saved.variable, entry),
                  reboot=False,
                  notes="This names the entry GRUB falls back to anyway; name another entry to boot that one.")


@hookimpl
def hostaudit_checks() -> list[Check]:
    return [boot_drift, boot_params, boot_saved_entry]
