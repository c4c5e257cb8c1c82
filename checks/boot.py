"""The boot configuration itself: regenerated from its inputs, and free of parameters the kernel ignores."""

from __future__ import annotations

from audit import hookimpl
from audit.boot.facts import BootCmdline, boot_cmdline
from audit.boot.model import (
    DEFAULT_GRUB,
    OPTIONAL_VARIABLES,
    TUNED_BOOTCMDLINE,
    WATCHED_PARAMS,
    BootConfig,
    glued_params,
    suspicious_params,
)
from audit.boot.modinfo import module_params
from audit.boot.params import ModuleParamsView, judge_params, load_table, series_of, with_accepted
from audit.host.core import Host
from audit.model import Check, Evidence, Outcome, Severity, check, errored, passed, skipped, warned
from audit.parsers.cmdline import Param, canonical_name, repeated_params
from audit.parsers.hugepages import hugepage_request
from audit.policy import Policy
from audit.remedy.cmdline import regenerate
from audit.remedy.target import FixTarget
from checks._common import hint, maybe_value

X86_DEFAULT_HUGEPAGE = 2 << 20
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


def _release_for(host: Host, boot: BootCmdline, label: str) -> str | None:
    """The kernel release a command line is judged for: the next boot's entry names its kernel (BLS
    version, image name), else the release fact (an image's default or newest kernel); the running
    kernel's only when the release fact comes from it."""
    rel = hint(lambda: host.kernel_release)
    if label == "next boot":
        entry = boot.config.entry
        if entry is not None and entry.version and series_of(entry.version):
            return entry.version
        return rel.release if rel else None
    return rel.release if rel and rel.how == "running kernel" else None


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
    order, and variables a boot loader could not expand: the setting then looks configured but is
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
        problems += [f"next boot: {p}" for p in boot.config.problems
                     if not any(h in p for h in harmless) and p not in unversioned]
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
        release = _release_for(host, boot, label)
        for f in judge_params(params, release, modules=modules, watched=WATCHED_PARAMS, table=table):
            (problems if f.level == "warn" else infos).append(f"{label}: {f.message}")
        problems += [f"{label}: {m}" for m in glued_params(params)]
        hp = hugepage_request(params, X86_DEFAULT_HUGEPAGE)
        problems += [f"{label}: {with_accepted(m, table)}" for m in hp.problems]
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


@hookimpl
def hostaudit_checks() -> list[Check]:
    return [boot_drift, boot_params]
