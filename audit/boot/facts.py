"""The next boot's kernel command line as a fact, and how to change it on this host's distribution."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from audit.boot.resolver import BootConfig, StaleParam, effective_params, resolve_boot_config
from audit.errors import FactError, FactUnavailable
from audit.host import facts
from audit.host.core import Host
from audit.host.kernel import os_release_fact
from audit.host.memory import booted_efi
from audit.host.registry import fact
from audit.model import Evidence
from audit.parsers.cmdline import Param

#: Everything the resolver may read (globs are expanded inside the root by snapshot collection).
BOOT_PATHS = (
    "/boot/grub2/grub.cfg", "/boot/grub/grub.cfg", "/boot/grub2/grubenv", "/boot/grub/grubenv",
    "/boot/efi/EFI/*/grub.cfg", "/boot/efi/EFI/*/grubenv", "/efi/EFI/*/grub.cfg", "/efi/EFI/*/grubenv",
    "/boot/EFI/*/grub.cfg", "/boot/EFI/*/grubenv",
    "/boot/loader/entries/*.conf", "/loader/entries/*.conf", "/boot/efi/loader/entries/*.conf",
    "/efi/loader/entries/*.conf", "/boot/efi/loader/loader.conf", "/efi/loader/loader.conf",
    "/boot/loader/loader.conf",
    "/boot/grub/grub.conf", "/boot/grub/menu.lst", "/etc/grub.conf", "/boot/grub/default",
    "/boot/efi/EFI/*/grub.conf",
    "/etc/default/grub", "/etc/default/grub.d/*.cfg", "/etc/kernel/cmdline", "/etc/tuned/bootcmdline",
    "/sys/firmware/efi",
    # which ESP vendor directory holds a boot binary, and which regeneration tools exist
    "?/boot/efi/EFI/*/*.efi", "?/efi/EFI/*/*.efi", "?/boot/EFI/*/*.efi",
    "?/usr/sbin/update-grub", "?/usr/sbin/grub-mkconfig", "?/usr/sbin/grub2-mkconfig", "?/usr/sbin/grubby",
    "?/sbin/grubby", "?/sbin/update-grub",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class BootCmdline:
    params: tuple[Param, ...] | None  # None: no boot configuration found, so unknown (never "empty")
    source: str  # the file the default entry came from, for evidence
    summary: str
    config: BootConfig

    @property
    def loader(self) -> str | None:
        return self.config.loader

    @property
    def stale(self) -> tuple[StaleParam, ...]:
        return self.config.stale

    @property
    def provenance(self) -> tuple[Evidence, ...]:
        return self.config.provenance


@fact(paths=BOOT_PATHS)
def boot_cmdline(host: Host) -> BootCmdline:
    try:
        efi: bool | None = host.fact(booted_efi)
    except FactUnavailable:
        efi = None
    cfg = resolve_boot_config(host.fs, efi=efi)
    params = effective_params(cfg)
    if cfg.loader is None:
        summary = cfg.summary or "no boot loader configuration found"
    else:
        summary = cfg.summary or f"{cfg.loader} configuration"
    return BootCmdline(
        params=tuple(params) if params is not None else None,
        source=cfg.config_path or (cfg.entry.source.split(":", 1)[0] if cfg.entry else "boot configuration"),
        summary=summary,
        config=cfg,
    )


def distro_family(host: Host) -> str | None:
    """'debian', 'rhel', 'suse' or None, for remediation wording only (os-release, else the release
    files of older hosts: CentOS/RHEL 6 has only /etc/redhat-release)."""
    try:
        return host.fact(facts.distro_family)
    except (FactUnavailable, FactError):
        return None


def rhel_installer(host: Host) -> str:
    """'dnf' on EL8+ and Fedora, 'yum' on EL7 and older (and without os-release: EL6)."""
    try:
        version = host.fact(os_release_fact).info.version_id or ""
    except (FactUnavailable, FactError):
        return "yum"
    major = version.split(".")[0]
    return "dnf" if major.isdigit() and int(major) >= 8 else "yum"


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


def _ere(name: str) -> str:
    """A parameter name as a literal in a sed extended regular expression."""
    return "".join(f"[{c}]" if c in ".[]()*+?{}|^$\\" else c for c in name)


def _token(name: str, value: str | None) -> str:
    return name if value is None else f"{name}={value}"


def cmdline_fix(
    host: Host,
    *,
    add: Mapping[str, str | None] | Sequence[tuple[str, str | None]] | None = None,
    remove: Sequence[str] = (),
) -> list[str]:
    """Commands that put ``add`` on (and take ``remove`` off) the kernel command line of every
    future boot, with the tool this host's boot configuration is managed by. Values are quoted.
    ``add`` may be a sequence of pairs where order or repetition matters (hugepagesz=/hugepages=)."""
    pairs = list(add.items()) if isinstance(add, Mapping) else list(add or ())
    if not pairs and not remove:
        return []
    add = pairs
    tokens = " ".join(_token(k, v) for k, v in pairs)
    try:
        boot = host.fact(boot_cmdline)
        loader, hint, config_path = boot.loader, boot.config.family_hint or "", boot.config.config_path
    except (FactUnavailable, FactError):
        loader, hint, config_path = None, "", None
    family = distro_family(host)
    removed = " ".join(remove)
    if loader in ("grub2-bls",) or "grubby" in hint or (family == "rhel" and loader in ("grub2", "grub-legacy", None)):
        cmds = []
        if remove:
            cmds.append(f"grubby --update-kernel=ALL --remove-args={shlex.quote(removed)}")
        if add:
            cmds.append(f"grubby --update-kernel=ALL --args={shlex.quote(tokens)}")
        return cmds
    if loader == "grub-legacy":
        path = config_path or "/boot/grub/grub.conf"
        cmds = []
        for name in remove:
            # looped, not /g: a match eats the blank before the next occurrence ("iommu=off iommu=off")
            expr = "s/[[:space:]]" + _ere(name) + "(=[^[:space:]]*)?([[:space:]]|$)/\\2/"
            cmds.append(f"sed -i -E -e '/^[[:space:]]*kernel /{{' -e :a -e {shlex.quote(expr)} -e ta -e '}}' "
                        f"{shlex.quote(path)}")
        if add:
            cmds.append(f"sed -i {shlex.quote(f'/^[[:space:]]*kernel /s/$/ {tokens}/')} {shlex.quote(path)}")
        return cmds
    if loader == "systemd-boot":
        return [f"# add '{tokens}' to /etc/kernel/cmdline and to the options line of each $ESP/loader/entries/*.conf"
                + (f"; remove {removed}" if remove else "")]
    if loader == "grub2" or family in ("debian", "suse"):
        regen = "update-grub" if family == "debian" else regen_command(hint, config_path)
        cmds = []
        for name in remove:
            expr = "s/(^|[[:space:]\"])" + _ere(name) + "(=[^[:space:]\"]*)?([[:space:]\"]|$)/\\1\\3/"
            cmds.append(f"sed -i -E -e :a -e {shlex.quote(expr)} -e ta /etc/default/grub")
        if add:
            line = f'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX {tokens}"'
            if family == "debian":
                cmds += ["mkdir -p /etc/default/grub.d",
                         f"echo {shlex.quote(line)} >> /etc/default/grub.d/90-hostaudit.cfg"]
            else:
                cmds.append(f"echo {shlex.quote(line)} >> /etc/default/grub")
        return [*cmds, regen]
    return [f"# add '{tokens}' to the kernel command line in your boot loader's configuration"
            + (f"; remove {removed}" if remove else "")]
