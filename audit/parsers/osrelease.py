"""/etc/os-release (and /usr/lib/os-release): shell-style assignments, os-release(5)."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from audit.parsers.text import lines
from audit.record import Record

#: the default of a mapping field: shared by every record, so it cannot be changed
_NO_ENTRIES: Mapping[Any, Any] = MappingProxyType({})


class OsRelease(Record):
    values: Mapping[str, str] = _NO_ENTRIES

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
    for raw in lines(text):
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


# -- hosts without os-release: the older identification files ------------------------------------------

#: Release files, most specific first (a Rocky host has rocky-, redhat- and system-release; an
#: Ubuntu host has debian_version too, so lsb-release and the CPE name are read before these).
RELEASE_FILES: tuple[tuple[str, str | None], ...] = (
    ("/etc/rocky-release", "rhel"), ("/etc/almalinux-release", "rhel"), ("/etc/oracle-release", "rhel"),
    ("/etc/centos-release", "rhel"), ("/etc/fedora-release", "rhel"), ("/etc/redhat-release", "rhel"),
    ("/etc/system-release", None), ("/etc/SuSE-release", "suse"), ("/etc/debian_version", "debian"),
)
LSB_RELEASE = "/etc/lsb-release"
SYSTEM_RELEASE_CPE = "/etc/system-release-cpe"
#: Every file ``identify_os`` may read after os-release, for fact declarations.
IDENTITY_FILES = (LSB_RELEASE, SYSTEM_RELEASE_CPE, *(p for p, _ in RELEASE_FILES))

_FAMILY_OF_ID = {"debian": "debian", "ubuntu": "debian", "linuxmint": "debian", "rhel": "rhel", "redhat": "rhel",
                 "fedora": "rhel", "fedoraproject": "rhel", "centos": "rhel", "rocky": "rhel", "almalinux": "rhel",
                 "ol": "rhel", "oracle": "rhel", "amzn": "rhel", "amazon": "rhel"}


def family_of(name: str) -> str | None:
    """'debian', 'rhel', 'suse' or None for a distribution id or CPE vendor ("ubuntu", "rocky", "sles")."""
    name = name.strip().lower()
    if name.startswith(("suse", "sles", "opensuse")):
        return "suse"
    return _FAMILY_OF_ID.get(name)


class OsIdentity(Record):
    name: str | None  # a human name: "Ubuntu 22.04.4 LTS", "Rocky Linux release 8.9 (Green Obsidian)"
    family: str | None
    source: str  # the file it came from


def identify_os(read: Callable[[str], str | None]) -> OsIdentity | None:
    """Who a host without a usable os-release is: /etc/lsb-release (Ubuntu, Mint), then the CPE name
    of /etc/system-release-cpe (RHEL and its rebuilds: "cpe:/o:rocky:rocky:8:GA"), then the release
    files, most specific first. ``read(path)`` returns a file's text or None; nothing here reads files."""
    text = read(LSB_RELEASE)
    if text is not None:
        lsb = parse_os_release(text).values  # the same KEY=value syntax
        dist = lsb.get("DISTRIB_ID", "")
        if dist:
            name = lsb.get("DISTRIB_DESCRIPTION") or " ".join(filter(None, (dist, lsb.get("DISTRIB_RELEASE"))))
            return OsIdentity(name=name, family=family_of(dist), source=LSB_RELEASE)
    cpe = read(SYSTEM_RELEASE_CPE)
    cpe_family = None
    if cpe is not None:
        parts = cpe.strip().split(":")  # cpe:/o:VENDOR:PRODUCT:VERSION... or cpe:2.3:o:VENDOR:PRODUCT:...
        names = parts[2:4] if parts[:2] == ["cpe", "/o"] else parts[3:5] if parts[:3] == ["cpe", "2.3", "o"] else []
        cpe_family = next((f for n in names if (f := family_of(n))), None)
    for path, family in RELEASE_FILES:
        text = read(path)
        if text is None:
            continue
        first = next((line.strip() for line in lines(text) if line.strip()), "")
        if path == "/etc/debian_version":
            return OsIdentity(name=f"Debian {first}".strip(), family=cpe_family or family, source=path)
        fam = family or cpe_family or _family_from_words(first)
        return OsIdentity(name=first or None, family=cpe_family or fam, source=path)
    if cpe_family is not None:
        return OsIdentity(name=None, family=cpe_family, source=SYSTEM_RELEASE_CPE)
    return None


def _family_from_words(line: str) -> str | None:
    """The family of a release line such as "Amazon Linux release 2 (Karoo)"."""
    for word in line.lower().replace("-", " ").split():
        fam = family_of(word)
        if fam:
            return fam
    return None
