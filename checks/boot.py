"""The boot configuration itself: regenerated from its inputs, and free of parameters the kernel ignores."""

from __future__ import annotations

from audit import hookimpl
from audit.boot.facts import boot_cmdline
from audit.boot.model import DEFAULT_GRUB, OPTIONAL_VARIABLES, TUNED_BOOTCMDLINE, BootConfig, suspicious_params
from audit.host.core import Host
from audit.model import Check, Evidence, Outcome, Severity, check, errored, passed, skipped, warned
from audit.parsers.cmdline import canonical_name, repeated_params
from audit.parsers.hugepages import hugepage_request
from audit.policy import Policy
from audit.remedy.cmdline import regenerate
from audit.remedy.target import FixTarget
from checks._common import maybe_value

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


@check(
    "boot.params",
    title="The kernel command line has no ignored or misspelt parameters",
    severity=Severity.LOW,
    reads=["/proc/cmdline", "boot configuration"],
    example_fix=["grubby --update-kernel=ALL --remove-args=transparent_hugepages --args=transparent_hugepage=madvise"],
)
def boot_params(host: Host, policy: Policy) -> Outcome:
    """The kernel silently ignores parameters it does not know (transparent_hugepages= with an s),
    huge page sizes given in the wrong order, and variables a boot loader could not expand: the
    setting then looks configured but is not."""
    ev: list[Evidence] = []
    problems: list[str] = []
    boot = host.fact(boot_cmdline)
    sources = []
    # an undefined variable such as $kernelopts leaves the next boot's parameters unknown (params is
    # None), which is exactly when it must be reported
    for var in boot.config.unresolved:
        if var in OPTIONAL_VARIABLES:  # tuned's variables, empty on purpose when tuned sets nothing
            ev.append(Evidence(source=boot.source, observed=f"${var} is not defined: expands to nothing "
                               "(harmless: tuned's boot parameters, none set)"))
            continue
        problems.append(f"next boot: ${var} is not defined anywhere and expands to nothing")
        ev.append(Evidence(source=boot.source, observed=boot.summary))
    if boot.params is not None:
        sources.append((boot.source, list(boot.params), "next boot"))
        harmless = tuple(f"${v} is not defined anywhere: it expands to nothing" for v in OPTIONAL_VARIABLES)
        problems += [f"next boot: {p}" for p in boot.config.problems if not any(h in p for h in harmless)]
    running = maybe_value(lambda: host.cmdline) if host.has_runtime else None
    if running is not None:
        sources.append(("/proc/cmdline", running, "running kernel"))
    if not sources and not problems:
        return skipped(f"no command line to check: {boot.summary}")
    for source, params, label in sources:
        ev.append(Evidence(source=source, observed=" ".join(p.name if p.value is None else f"{p.name}={p.value}"
                                                            for p in params)[:500]))
        problems += [f"{label}: {m}" for m in suspicious_params(params)]
        problems += [f"{label}: {m}" for m in hugepage_request(params, X86_DEFAULT_HUGEPAGE).problems]
        for name, vals in repeated_params(params):
            problems.append(f"{label}: {name} is given {len(vals)} times ({', '.join(repr(v) for v in vals)}): the "
                            "kernel acts on one of them and overrides or ignores the others")
        literal = [p.name for p in params if "$" in p.name or (p.value and p.value.startswith("$"))]
        problems += [f"{label}: literal variable {n!r} reached the kernel" for n in literal]
    if problems:
        return warned("; ".join(dict.fromkeys(problems)), ev,
                      fix=["# correct the parameters with the tool that manages this boot configuration"],
                      notes="Misspelt or misordered parameters are ignored without an error.")
    return passed("no ignored or misspelt parameters on " + " and ".join(label for _, _, label in sources)
                  + boot.predicted, ev)


@hookimpl
def hostaudit_checks() -> list[Check]:
    return [boot_drift, boot_params]
