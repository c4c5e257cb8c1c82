"""/etc/os-release (and /usr/lib/os-release): shell-style assignments, os-release(5)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class OsRelease:
    values: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str | None:
        return self.values.get("ID")

    @property
    def id_like(self) -> tuple[str, ...]:
        return tuple(self.values.get("ID_LIKE", "").split())

    @property
    def pretty_name(self) -> str | None:
        return self.values.get("PRETTY_NAME") or self.values.get("NAME")

    @property
    def version_id(self) -> str | None:
        return self.values.get("VERSION_ID")

    def family(self) -> str | None:
        """'debian', 'rhel', 'suse' or None: used only for remediation wording, never gating."""
        ids = (self.id or "", *self.id_like)
        for name in ids:
            if name in ("debian", "ubuntu"):
                return "debian"
            if name in ("rhel", "fedora", "centos", "rocky", "almalinux", "ol", "amzn"):
                return "rhel"
            if name.startswith(("suse", "sles", "opensuse")):
                return "suse"
        return None


def parse_os_release(text: str) -> OsRelease:
    """Values may be unquoted, "double" or 'single' quoted with shell escapes; a bad line is skipped.

    os-release(5) says readers should ignore lines they cannot parse, so nothing here raises.
    """
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, rest = line.partition("=")
        key = key.strip()
        if not key.replace("_", "").isalnum():
            continue
        try:
            parts = shlex.split(rest, comments=False, posix=True)
        except ValueError:
            continue
        values[key] = " ".join(parts)
    return OsRelease(values=values)
