"""Regeneration inputs: the values the boot-configuration generators read (``/etc/default/grub`` and
``grub.d``, ``/etc/kernel/cmdline``, tuned's ``bootcmdline``), whether each reaches the default entry,
and what the entry lacks that an input asks for (a stale configuration)."""

from __future__ import annotations

from audit.boot.model import (
    DEFAULT_GRUB,
    DEFAULT_GRUB_D,
    KERNEL_CMDLINE,
    ORDERED_PARAMS,
    TUNED_BOOTCMDLINE,
    BootEntry,
    CmdlineInput,
    StaleParam,
)
from audit.boot.reader import Reader
from audit.errors import ParseError
from audit.parsers import grub  # each GRUB parser loads on first use: none on a host without GRUB
from audit.parsers.cmdline import Param, tokenize, values


def read_inputs(reader: Reader) -> tuple[list[CmdlineInput], list[str]]:
    problems: list[str] = []
    inputs: list[CmdlineInput] = []
    env: dict[str, grub.ShellVar] = {}
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
            parsed = grub.parse_shell_vars(text, env=env, tag=path)
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
        value = grub.parse_kernel_cmdline_file(text)
        inputs.append(
            CmdlineInput(
                name=KERNEL_CMDLINE, value=value, params=tuple(tokenize(value)), source=f"{KERNEL_CMDLINE}:1"
            )
        )
    text = reader.text(TUNED_BOOTCMDLINE)
    if text is not None:
        try:
            tuned = grub.parse_shell_vars(text, tag=TUNED_BOOTCMDLINE)
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


def applicability(
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


def stale_params(inputs: list[CmdlineInput], params: list[Param]) -> list[StaleParam]:
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
