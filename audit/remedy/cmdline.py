"""Kernel command line changes for every future boot, with the tool the target's boot configuration is
managed by (grubby, /etc/default/grub and its generator, legacy grub.conf, systemd-boot entries)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from audit.remedy.target import FixTarget

Params = Mapping[str, str | None] | Sequence[tuple[str, str | None]]


def regen_command(hint: str | None, config_path: str | None = None) -> str:
    """The command that regenerates a GRUB 2 configuration, from the resolver's hint. The hint
    carries a path found in the audited root, so it is rebuilt with the path quoted, never pasted."""
    words = (hint or "").split(" -o ", 1)
    tool = words[0].strip()
    if tool in ("grub2-mkconfig", "grub-mkconfig"):
        path = words[1] if len(words) == 2 else (config_path or "/boot/grub2/grub.cfg")
        return f"{tool} -o {shlex.quote(path)}"
    if tool == "update-grub":
        return "update-grub"
    return "grub2-mkconfig -o " + shlex.quote(config_path or "/boot/grub2/grub.cfg")


def regenerate(target: FixTarget, missing: Sequence[str]) -> list[str]:
    """Commands that bring the boot configuration in line with its inputs; ``missing`` holds the
    parameters (``name=value``) the inputs ask for and the default entry lacks."""
    if target.family_hint == "grubby" or target.loader == "grub2-bls":
        # grub2-mkconfig does not rewrite BLS options: put exactly the missing parameters in with grubby
        return ["grubby --update-kernel=ALL --args=" + shlex.quote(" ".join(missing))]
    if not target.family_hint:
        return ["# regenerate the boot loader configuration from /etc/default/grub"]
    return [regen_command(target.family_hint, target.config_path)]


def _ere(name: str) -> str:
    """A parameter name as a literal in a sed extended regular expression."""
    return "".join(f"[{c}]" if c in ".[]()*+?{}|^$\\" else c for c in name)


def _token(name: str, value: str | None) -> str:
    return name if value is None else f"{name}={value}"


def kernel_params(target: FixTarget, *, add: Params | None = None, remove: Sequence[str] = ()) -> list[str]:
    """Commands that put ``add`` on (and take ``remove`` off) the kernel command line of every
    future boot, with the tool the target's boot configuration is managed by. Values are quoted.
    ``add`` may be a sequence of pairs where order or repetition matters (hugepagesz=/hugepages=)."""
    pairs = list(add.items()) if isinstance(add, Mapping) else list(add or ())
    if not pairs and not remove:
        return []
    tokens = " ".join(_token(k, v) for k, v in pairs)
    loader, hint, family = target.loader, target.family_hint, target.family
    removed = " ".join(remove)
    if loader in ("grub2-bls",) or "grubby" in hint or (family == "rhel" and loader in ("grub2", "grub-legacy", None)):
        cmds = []
        if remove:
            cmds.append(f"grubby --update-kernel=ALL --remove-args={shlex.quote(removed)}")
        if pairs:
            cmds.append(f"grubby --update-kernel=ALL --args={shlex.quote(tokens)}")
        return cmds
    if loader == "grub-legacy":
        path = target.config_path or "/boot/grub/grub.conf"
        cmds = []
        for name in remove:
            # looped, not /g: a match eats the blank before the next occurrence ("iommu=off iommu=off")
            expr = "s/[[:space:]]" + _ere(name) + "(=[^[:space:]]*)?([[:space:]]|$)/\\2/"
            cmds.append(f"sed -i -E -e '/^[[:space:]]*kernel /{{' -e :a -e {shlex.quote(expr)} -e ta -e '}}' "
                        f"{shlex.quote(path)}")
        if pairs:
            cmds.append(f"sed -i {shlex.quote(f'/^[[:space:]]*kernel /s/$/ {tokens}/')} {shlex.quote(path)}")
        return cmds
    if loader == "systemd-boot":
        return [f"# add '{tokens}' to /etc/kernel/cmdline and to the options line of each $ESP/loader/entries/*.conf"
                + (f"; remove {removed}" if remove else "")]
    if loader == "grub2" or family in ("debian", "suse"):
        regen = "update-grub" if family == "debian" else regen_command(hint, target.config_path)
        cmds = []
        for name in remove:
            expr = "s/(^|[[:space:]\"])" + _ere(name) + "(=[^[:space:]\"]*)?([[:space:]\"]|$)/\\1\\3/"
            cmds.append(f"sed -i -E -e :a -e {shlex.quote(expr)} -e ta /etc/default/grub")
        if pairs:
            line = f'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX {tokens}"'
            if family == "debian":
                cmds += ["mkdir -p /etc/default/grub.d",
                         f"echo {shlex.quote(line)} >> /etc/default/grub.d/90-hostaudit.cfg"]
            else:
                cmds.append(f"echo {shlex.quote(line)} >> /etc/default/grub")
        return [*cmds, regen]
    return [f"# add '{tokens}' to the kernel command line in your boot loader's configuration"
            + (f"; remove {removed}" if remove else "")]
