"""Boot-time persistence through systemd and SysV: masks, enable links, .mount units, ksmtuned.conf.

Pure helpers on names, link targets and texts; the host layer reads (inside the root):

- ``unit_state`` / ``is_masked``: for each directory of ``UNIT_DIRS``, whether ``<dir>/<unit>``
  exists and, if it is a symlink, its target (``os.readlink``, not resolved).
- ``is_enabled`` / ``wanted_by``: the names inside every ``*.wants``, ``*.requires`` and
  ``*.upholds`` directory directly under each of ``UNIT_DIRS``.
- ``sysv_enabled``: the names inside each of ``SYSV_RC_DIRS`` that exists.
- ``parse_mount_unit``: ``<dir>/<name>.mount`` from the first of ``UNIT_DIRS`` that has it, then
  its drop-ins ``<dir>/<name>.mount.d/*.conf`` from all ``UNIT_DIRS`` sorted by basename;
  ``mount_unit_name("/dev/hugepages")`` gives the name (``dev-hugepages.mount``).
- ``parse_ksmtuned_conf``: ``KSMTUNED_CONF``.

Generator output (``/run/systemd/generator*``, e.g. units made from fstab) is left out: it does
not exist in an image, and fstab is parsed directly (``audit.parsers.mounts.parse_fstab``).
"""

from __future__ import annotations

import enum
import posixpath
import re
import shlex
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from audit.errors import ParseError
from audit.parsers.mounts import normalize_mount_path, split_options
from audit.parsers.paths import normalize
from audit.parsers.text import lines
from audit.record import Record

# Highest priority first (systemd.unit(5), system manager unit search path).
UNIT_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",  # systems without merged /usr
)
_ADMIN_DIRS = ("/etc/systemd/system",)
_RUNTIME_DIRS = ("/run/systemd/system",)
_DEPENDENCY_DIR_SUFFIXES = (".wants", ".requires", ".upholds")

# Debian-style and Red Hat-style rc directories for the multi-user runlevels 2-5.
SYSV_RC_DIRS = tuple(f"/etc/rc{n}.d" for n in range(2, 6)) + tuple(f"/etc/rc.d/rc{n}.d" for n in range(2, 6))
_RC_DIR = re.compile(r"rc(?P<level>[0-6S])\.d")

KSMTUNED_CONF = "/etc/ksmtuned.conf"
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class UnitState(str, enum.Enum):
    MASKED = "masked"  # unit file is a /dev/null link in /etc (or a vendor dir)
    MASKED_RUNTIME = "masked-runtime"  # /dev/null link in /run: gone after reboot
    ENABLED = "enabled"  # a dependency link under /etc
    ENABLED_RUNTIME = "enabled-runtime"  # links only under /run: gone after reboot
    VENDOR = "vendor"  # links only in vendor dirs (systemctl says "static"); starts unless masked
    DISABLED = "disabled"  # unit file exists, nothing links it
    NOT_FOUND = "not-found"

    def __str__(self) -> str:  # f"{state}" gives "masked", not "UnitState.MASKED"
        return self.value

    @property
    def starts_at_boot(self) -> bool:
        """Started by the next boot's transaction (runtime-only links do not survive a reboot)."""
        return self in (UnitState.ENABLED, UnitState.VENDOR)


def is_masked(link_target: str | None, *, link_dir: str = "/etc/systemd/system") -> bool:
    """True when a unit file link points to /dev/null, written absolute or relative to ``link_dir``.

    ``..`` is resolved lexically and stops at ``/``, as inside the audited root.
    (systemd also treats an empty regular unit file as masked; that needs the file size.)
    """
    if link_target is None:
        return False
    target = link_target if link_target.startswith("/") else f"{link_dir}/{link_target}"
    return normalize(target) == "/dev/null"


def _dependency_dir_kind(path: str) -> str | None:
    """'admin', 'runtime' or 'vendor' for a ``<UNIT_DIR>/<x>.wants`` directory, else None."""
    parent, name = posixpath.split(normalize_mount_path(path))
    if parent not in UNIT_DIRS or not name.endswith(_DEPENDENCY_DIR_SUFFIXES):
        return None
    if parent in _ADMIN_DIRS:
        return "admin"
    if parent in _RUNTIME_DIRS:
        return "runtime"
    return "vendor"


def _names_match(unit: str, name: str) -> bool:
    if name == unit:
        return True
    # A template ("foo@.service") is enabled through its instances ("foo@bar.service").
    prefix, at, suffix = unit.partition("@")
    return bool(at) and suffix.startswith(".") and name.startswith(prefix + "@") and name.endswith(suffix)


def wanted_by(unit: str, wants_listing: Mapping[str, Sequence[str]]) -> list[str]:
    """The dependency directories (``…/multi-user.target.wants``) that link ``unit``: evidence."""
    return [
        d
        for d, names in wants_listing.items()
        if _dependency_dir_kind(d) is not None and any(_names_match(unit, n) for n in names)
    ]


def is_enabled(unit: str, wants_listing: Mapping[str, Sequence[str]]) -> bool:
    """A ``.wants``/``.requires``/``.upholds`` link anywhere in ``UNIT_DIRS`` pulls the unit in.

    Vendor links count (``dev-hugepages.mount`` is linked from /usr/lib's sysinit.target.wants);
    use ``unit_state`` to tell admin, runtime and vendor links apart, and to see masks.
    """
    return bool(wanted_by(unit, wants_listing))


def unit_state(
    unit: str,
    *,
    unit_files: Mapping[str, str | None],
    wants_listing: Mapping[str, Sequence[str]],
) -> UnitState:
    """systemctl-like state of ``unit`` from the files of the root.

    ``unit_files`` maps every existing ``<UNIT_DIR>/<unit>`` (and, for an instance, its template
    ``foo@.service``) to its link target, or None for a regular file. The first directory in
    ``UNIT_DIRS`` order that has the unit decides about masking.
    """
    files = {normalize_mount_path(p): t for p, t in unit_files.items()}
    candidates = [unit]
    prefix, at, rest = unit.partition("@")
    if at and not rest.startswith(".") and "." in rest:  # instance: its template file counts too
        candidates.append(f"{prefix}@{rest[rest.rfind('.') :]}")
    found_in = next(((d, f"{d}/{n}") for n in candidates for d in UNIT_DIRS if f"{d}/{n}" in files), None)
    if found_in is None:
        return UnitState.NOT_FOUND
    d, path = found_in
    if is_masked(files[path], link_dir=d):
        return UnitState.MASKED_RUNTIME if d in _RUNTIME_DIRS else UnitState.MASKED
    kinds = {_dependency_dir_kind(d) for d in wanted_by(unit, wants_listing)}
    if "admin" in kinds:
        return UnitState.ENABLED
    if "vendor" in kinds:
        return UnitState.VENDOR
    if "runtime" in kinds:
        return UnitState.ENABLED_RUNTIME
    return UnitState.DISABLED


def sysv_enabled(service: str, rc_listing: Mapping[str, Sequence[str]]) -> bool:
    """An ``S<NN><service>`` start link in rc2.d–rc5.d (``/etc/rc3.d`` or ``/etc/rc.d/rc3.d``)."""
    name = service.removesuffix(".service")
    start = re.compile(r"S\d+" + re.escape(name))
    for d, names in rc_listing.items():
        m = _RC_DIR.fullmatch(posixpath.basename(normalize_mount_path(d)))
        if m is None or m.group("level") not in "2345":
            continue
        if any(start.fullmatch(n) for n in names):
            return True
    return False


# --- unit files ---------------------------------------------------------------------------------


def parse_unit_file(text: str) -> dict[str, dict[str, list[str]]]:
    """systemd.syntax(7): ``[Section]``, ``Key=Value``, ``#``/``;`` comments, ``\\`` continuation.

    Every assignment is kept in order (an empty one is ``""``, which resets list settings).
    """
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending: list[str] = []
    pending_line = 0
    for lineno, raw in enumerate(lines(text), start=1):
        line = raw.strip()
        if pending and line[:1] in ("#", ";"):
            continue  # comments inside a continued line are skipped
        if not pending:
            if not line or line[0] in "#;":
                continue
            pending_line = lineno
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        logical, pending = " ".join(pending).strip(), []
        if logical.startswith("["):
            if not logical.endswith("]") or len(logical) < 3:
                raise ParseError(f"bad section header: {logical!r}", line=pending_line)
            current = sections.setdefault(logical[1:-1], {})
            continue
        key, eq, value = logical.partition("=")
        if not eq:
            raise ParseError(f"missing '=': {logical!r}", line=pending_line)
        if current is None:
            raise ParseError(f"assignment outside of a section: {logical!r}", line=pending_line)
        current.setdefault(key.strip(), []).append(value.strip())
    if pending:
        raise ParseError("file ends inside a continued line", line=pending_line)
    return sections



#: the default of a mapping field: shared by every record, so it cannot be changed
_NO_ENTRIES: Mapping[Any, Any] = MappingProxyType({})


class MountUnit(Record):
    what: str | None
    where: str | None
    type: str | None
    options: str | None  # raw Options= value
    option_map: Mapping[str, str | None] = _NO_ENTRIES
    wanted_by: tuple[str, ...] = ()  # [Install] WantedBy= and RequiredBy=: what enabling links to


def parse_mount_unit(text: str, *dropins: str) -> MountUnit:
    """``What=``, ``Where=``, ``Type=``, ``Options=`` of a ``.mount`` unit, drop-ins applied in order.

    A later assignment wins; an empty one resets the setting.
    """
    values: dict[str, str | None] = {"What": None, "Where": None, "Type": None, "Options": None}
    install: list[str] = []
    for part in (text, *dropins):
        sections = parse_unit_file(part)
        for key in values:
            assigned = sections.get("Mount", {}).get(key)
            if assigned:
                values[key] = assigned[-1] or None
        for key in ("WantedBy", "RequiredBy"):
            for v in sections.get("Install", {}).get(key, []):
                if v:
                    install.extend(v.split())
                else:
                    install.clear()
    options = values["Options"]
    option_map = split_options(options)[1] if options else _NO_ENTRIES
    return MountUnit(
        what=values["What"],
        where=values["Where"],
        type=values["Type"],
        options=options,
        option_map=option_map,
        wanted_by=tuple(install),
    )


def mount_unit_name(where: str) -> str:
    """The unit name systemd gives a mount point (``systemd-escape --path --suffix=mount``)."""
    path = normalize_mount_path(where).strip("/")
    if not path:
        return "-.mount"
    out: list[str] = []
    for i, ch in enumerate(path):
        if ch == "/":
            out.append("-")
        elif (ch.isascii() and (ch.isalnum() or ch in ":_.")) and not (ch == "." and i == 0):
            out.append(ch)
        else:
            out.extend(f"\\x{b:02x}" for b in ch.encode("utf-8", errors="surrogateescape"))
    return "".join(out) + ".mount"


# --- ksmtuned ---------------------------------------------------------------------------------


def _strip_shell_comment(text: str) -> str:
    """Cut an unquoted ``#`` that starts a word; ``shlex``'s own comment mode also cuts ``a#b``."""
    quote: str | None = None
    escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\" and quote != "'":
            escaped = True
        elif quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i]
    return text


def parse_ksmtuned_conf(text: str) -> dict[str, str]:
    """Shell-style ``KEY=value`` lines of /etc/ksmtuned.conf (ksmtuned sources it with bash).

    Quotes are removed as the shell would; ``# …`` comments; ``export`` is accepted. A later
    assignment wins. Anything the shell would not read as a plain assignment is a ParseError.
    """
    values: dict[str, str] = {}
    for lineno, raw in enumerate(lines(text), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, eq, rest = line.partition("=")
        if not eq or not _SHELL_NAME.fullmatch(key):
            raise ParseError(f"not a KEY=value assignment: {line!r}", line=lineno)
        try:
            words = shlex.split(_strip_shell_comment(rest))
        except ValueError as e:
            raise ParseError(f"{key}: {e}", line=lineno) from None
        if words and rest[:1].isspace():
            raise ParseError(f"{key}: space after '=' (the shell would run {words[0]!r})", line=lineno)
        if len(words) > 1:
            raise ParseError(f"{key}: unquoted spaces in value {rest.strip()!r}", line=lineno)
        values[key] = words[0] if words else ""
    return values
