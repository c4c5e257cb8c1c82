"""The next boot's kernel command line as a fact (changing it is audit.remedy.cmdline's job)."""

from __future__ import annotations

from audit.boot.model import BootConfig, StaleParam, effective_params
from audit.boot.resolver import resolve_boot_config
from audit.errors import FactUnavailable
from audit.host.core import Host
from audit.host.memory import booted_efi
from audit.host.registry import fact
from audit.model import Evidence
from audit.parsers.cmdline import Param
from audit.record import Record

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


class BootCmdline(Record):
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

    @property
    def predicted(self) -> str:
        """" (predicted: /boot/grub/grub.cfg not generated yet)" for a message, or "" when read."""
        return f" ({self.config.prediction})" if self.config.prediction else ""


@fact(paths=BOOT_PATHS)
def boot_cmdline(host: Host) -> BootCmdline:
    try:
        efi: bool | None = host.fact(booted_efi)
    except FactUnavailable:
        efi = None
    cfg = resolve_boot_config(host.fs, efi=efi, predict=not host.has_runtime)
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
