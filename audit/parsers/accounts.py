"""/etc/passwd and /etc/group as glibc's nss_files reads them: users, groups, and who is in which.

Linear and bounded: one pass over each file into dictionaries keyed by name and by id. The first
entry for a name or an id wins (``getpwnam``, ``getgrgid`` stop at the first match); a user's
supplementary groups are every group entry that lists the user (``getgrouplist`` reads them all).
Blank lines, lines starting with ``#`` and lines nss_files cannot parse (too few fields, an id
that is not a number) are skipped, as glibc skips them: a broken line never fails the audit, it is
counted. Lines starting with ``+`` or ``-`` are NIS "compat" entries: accounts come from elsewhere too.
"""

from __future__ import annotations

from collections.abc import Iterator

from audit.record import Record

#: (uid_t)-1 and (gid_t)-1 are "no id"; anything larger does not fit.
MAX_ID = (1 << 32) - 2


class User(Record):
    name: str
    uid: int
    gid: int  # the primary group
    line: int


class Group(Record):
    name: str
    gid: int
    members: tuple[str, ...]
    line: int


class Passwd(Record):
    by_name: dict[str, User]
    by_uid: dict[int, User]
    skipped: int = 0  # lines glibc would skip as unparsable
    compat: bool = False  # "+"/"-" lines: NIS compat entries (more users come from elsewhere)


class Groups(Record):
    by_name: dict[str, Group]
    by_gid: dict[int, Group]
    member_of: dict[str, tuple[int, ...]]  # user name -> gids of the groups that list it, in file order
    skipped: int = 0
    compat: bool = False


def _id(text: str) -> int | None:
    if not text.isdigit() or not text.isascii() or len(text) > 10:
        return None
    value = int(text)
    return value if value <= MAX_ID else None


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of the lines glibc looks at: leading blanks skipped, blank and # lines
    left out. Only "\\n" ends a line, as in nss_files."""
    for no, raw in enumerate(text.split("\n"), 1):
        line = raw.lstrip(" \t\r\f\v")
        if line and not line.startswith("#"):
            yield no, line


def parse_passwd(text: str) -> Passwd:
    by_name: dict[str, User] = {}
    by_uid: dict[int, User] = {}
    skipped = 0
    compat = False
    for no, line in _lines(text):
        if line[0] in "+-":
            compat = True
            continue
        fields = line.split(":", 6)
        if len(fields) < 7 or not fields[0]:
            skipped += 1
            continue
        uid, gid = _id(fields[2]), _id(fields[3])
        if uid is None or gid is None:
            skipped += 1
            continue
        user = User(name=fields[0], uid=uid, gid=gid, line=no)
        by_name.setdefault(user.name, user)
        by_uid.setdefault(uid, user)
    return Passwd(by_name=by_name, by_uid=by_uid, skipped=skipped, compat=compat)


def parse_group(text: str) -> Groups:
    by_name: dict[str, Group] = {}
    by_gid: dict[int, Group] = {}
    member_of: dict[str, list[int]] = {}
    skipped = 0
    compat = False
    for no, line in _lines(text):
        if line[0] in "+-":
            compat = True
            continue
        fields = line.split(":", 3)
        if len(fields) < 3 or not fields[0]:
            skipped += 1
            continue
        gid = _id(fields[2])
        if gid is None:
            skipped += 1
            continue
        members = tuple(m for m in (p.strip() for p in fields[3].split(",")) if m) if len(fields) > 3 else ()
        group = Group(name=fields[0], gid=gid, members=members, line=no)
        by_name.setdefault(group.name, group)
        by_gid.setdefault(gid, group)
        for m in members:
            gids = member_of.setdefault(m, [])
            if not gids or gids[-1] != gid:
                gids.append(gid)
    return Groups(by_name=by_name, by_gid=by_gid, member_of={k: tuple(v) for k, v in member_of.items()},
                  skipped=skipped, compat=compat)


class Accounts(Record):
    passwd: Passwd
    group: Groups

    def user(self, name: str) -> User | None:
        return self.passwd.by_name.get(name)

    def groups_of(self, user: User) -> frozenset[int]:
        """The primary and the supplementary groups of ``user`` (what ``getgrouplist`` returns)."""
        return frozenset((user.gid, *self.group.member_of.get(user.name, ())))

    def user_name(self, uid: int) -> str:
        u = self.passwd.by_uid.get(uid)
        return u.name if u else str(uid)

    def group_name(self, gid: int) -> str:
        g = self.group.by_gid.get(gid)
        return g.name if g else str(gid)

    @property
    def compat(self) -> bool:
        return self.passwd.compat or self.group.compat
