"""The parse cache a fleet run shares between the hosts of one process (audit.host.core.ParseCache):
keyed by parser and content, never handing out something a check could change for another host,
bounded; and audits with it are the audits without it, on hosts built from the real samples."""

from __future__ import annotations

import base64
import copy
import dataclasses
import gzip
from pathlib import Path

import pytest

from audit.engine import exit_code, run_audit
from audit.errors import FactError, ParseError
from audit.host.core import Host, ParseCache
from audit.host.snapshot import SnapshotError, host_from_snapshot, parse_snapshot
from audit.parsers.cmdline import tokenize
from audit.parsers.cpuinfo import parse_cpuinfo
from audit.parsers.kconfig import parse_kconfig
from audit.parsers.mounts import parse_mounts
from audit.plugins import make_plugins
from audit.policy import DEFAULT_POLICY
from reports.document import report_dict
from tests import trees
from tests.conftest import DATA, cpuinfo_sample, kconfig_sample
from tests.test_fleet import capture

KCONFIG = kconfig_sample("debian12-config-6.1.0-56-amd64").read_text()
CPUINFO = cpuinfo_sample("intel-xeon-e5-2690v4-broadwell-ep.txt").read_text()
MOUNTS = (DATA / "proc" / "this-vm-hugepages" / "mounts").read_text()


def test_the_same_text_is_parsed_once_per_parser() -> None:
    cache = ParseCache()
    a = cache.parse("/boot/config-a", KCONFIG, parse_kconfig)
    b = cache.parse("/lib/modules/b/config", KCONFIG, parse_kconfig)
    assert (cache.hits, cache.misses, len(cache)) == (1, 1, 1)
    assert a == b == parse_kconfig(KCONFIG)
    cache.parse("/boot/config-c", KCONFIG + "CONFIG_X=y\n", parse_kconfig)  # other content
    cache.parse("/proc/cmdline", "quiet", tokenize)
    cache.parse("/proc/cmdline", "quiet", lambda text: tokenize(text))  # another parser: its own entry
    assert cache.misses == 4 and len(cache) == 4


def test_nothing_a_host_gets_can_change_what_another_host_gets() -> None:
    cache = ParseCache()
    first = cache.parse("/boot/config-a", KCONFIG, parse_kconfig)
    with pytest.raises(TypeError):
        first.options["CONFIG_KSM"] = "n"  # a kernel config is read-only: shared as it is, never copied
    assert cache.parse("/boot/config-b", KCONFIG, parse_kconfig) is first
    params = cache.parse("/proc/cmdline", "a=1 quiet", tokenize)
    params.append(params[0])
    assert len(cache.parse("/proc/cmdline", "a=1 quiet", tokenize)) == 2
    mounts = cache.parse("/proc/mounts", MOUNTS, parse_mounts)
    mounts.append(mounts[0])
    assert len(cache.parse("/proc/mounts", MOUNTS, parse_mounts)) == len(mounts) - 1
    with pytest.raises(TypeError):
        mounts[0].option_map["rw"] = "changed"  # a row's options are read-only: shared, not copied
    # what cannot change is shared as it is: no copy for a frozen CpuInfo of frozensets and tuples
    assert cache.parse("/proc/cpuinfo", CPUINFO, parse_cpuinfo) is cache.parse("/proc/cpuinfo", CPUINFO, parse_cpuinfo)


def test_bytes_are_decoded_as_a_host_reads_them_and_kept_apart_from_text() -> None:
    cache = ParseCache()
    data = KCONFIG.encode() + b"# \xff\n"
    a = cache.parse("/boot/config-a", data, parse_kconfig)
    assert a == parse_kconfig(data.decode("utf-8", errors="replace"))
    assert cache.parse("/boot/config-b", bytes(data), parse_kconfig) is a  # equal bytes: a hit
    assert (cache.hits, cache.misses) == (1, 1)
    cache.parse("/boot/config-c", data.decode("utf-8", errors="replace"), parse_kconfig)
    assert cache.misses == 2


def test_values_it_cannot_copy_and_failures_are_not_kept() -> None:
    class Plain:  # an object of a plain class: anything may change it
        pass

    cache = ParseCache()
    made = [cache.parse("/x", "text", lambda _: Plain()) for _ in range(2)]
    assert made[0] is not made[1] and len(cache) == 0

    @dataclasses.dataclass
    class Open:  # a dataclass that is not frozen
        n: int

    cache.parse("/x", "text", lambda _: Open(1))
    assert len(cache) == 0

    def bad(text: str) -> int:
        raise ParseError("not a number", line=3)

    for path in ("/etc/a", "/etc/b"):
        with pytest.raises(FactError, match=f"^{path}:3: not a number$"):
            cache.parse(path, "x", bad)  # the file it was read from, each time
    assert len(cache) == 0


def test_it_is_bounded() -> None:
    cache = ParseCache(max_entries=3, max_bytes=1000)
    for i in range(5):
        cache.parse("/p", f"{i}", tokenize)
    assert len(cache) == 3
    cache.parse("/p", "4", tokenize)
    assert cache.hits == 1  # the newest stayed
    cache.parse("/p", "0", tokenize)
    assert cache.misses == 6  # the oldest went
    cache.parse("/p", "x" * 600, tokenize)
    cache.parse("/p", "y" * 600, tokenize)
    assert cache._bytes <= 1000
    cache.parse("/p", "z" * 2000, tokenize)  # larger than the whole cache: parsed, not kept
    assert cache._bytes <= 1000 and len(cache) <= 3


def test_snapshot_content_is_decoded_once_and_still_checked() -> None:
    data = KCONFIG.encode()
    packed = base64.b64encode(gzip.compress(data, mtime=0)).decode()
    doc = ('{"format": "hostaudit-snapshot", "schema_version": 1, "source": {"mode": "image"}, "entries": '
           '{"/boot/config-1": {"type": "file", "encoding": "gzip+base64", "size": %d, "data": "%s"}}}')
    cache = ParseCache()
    for _ in range(2):
        snap = parse_snapshot((doc % (len(data), packed)).encode(), cache=cache)
        assert snap.entries["/boot/config-1"].data == data
    assert cache.hits == 1
    with pytest.raises(SnapshotError, match="does not match"):  # the size is checked on a shared decoding too
        parse_snapshot((doc % (len(data) + 1, packed)).encode(), cache=cache)
    truncated = base64.b64encode(gzip.compress(data, mtime=0)[:-8]).decode()
    for _ in range(2):  # a decoding that failed is not kept: it fails again
        with pytest.raises(SnapshotError, match="truncated"):
            parse_snapshot((doc % (len(data), truncated)).encode(), cache=cache)


def test_text_snapshot_records_are_checked_once_and_still_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_cpu_read_speed import PLAIN, _file, _text

    cache = ParseCache()
    alone = parse_snapshot(PLAIN)
    for _ in range(2):  # the second time every record comes from the cache: the same snapshot
        assert parse_snapshot(PLAIN, cache=cache) == alone
    assert len(cache._records) >= 9
    # a record kept from an earlier host still costs this host its decoded bytes: the cap holds
    big = _file(b"/etc/big", b"x" * 5000)
    twice = _text(b"meta mode live\n", big, big.replace(b"/etc/big", b"/etc/big2"))
    parse_snapshot(twice, cache=cache)
    monkeypatch.setattr("audit.host.snapshot.MAX_DECODED", 9000)
    with pytest.raises(SnapshotError, match="decodes to more than 9000 bytes"):
        parse_snapshot(twice, cache=cache)
    with pytest.raises(SnapshotError, match="decodes to more than 9000 bytes"):
        parse_snapshot(twice)
    # a record that fails is not kept: it fails again, with the same message
    bad = _text(b"meta mode live\n", b"link /etc/x \n")
    for _ in range(2):
        with pytest.raises(SnapshotError, match="line 3"):
            parse_snapshot(bad, cache=cache)


def _hosts(tmp: Path) -> list[tuple[str, bytes]]:
    """Snapshots of hosts built from the samples; two share their kernel config and boot files."""
    rhel = trees.rhel9_tree()
    rhel.update(trees.live_tree("this-vm-hugepages", cpuinfo="intel-xeon-gold-6132-skylake-sp.txt",
                                release=trees.EL9_RELEASE))
    # the same grub.cfg and BLS entry as el9, another grubenv: GRUB's run differs only in what it loads
    rhel_b = trees.rhel9_tree(kernelopts=trees.EL9_KERNELOPTS + " hugepagesz=1G hugepages=8")
    rhel_b.update(trees.live_tree("this-vm-hugepages", cpuinfo="intel-xeon-gold-6132-skylake-sp.txt",
                                  release=trees.EL9_RELEASE))
    specs = {
        "deb-a": trees.debian12_live("hugepagesz=1G hugepages=16 intel_iommu=on"),
        "deb-b": trees.debian12_live("intel_iommu=on", thp="always madvise [never]\n"),
        "el6": trees.centos6_tree(live=True),
        "el9": rhel,
        "el9-b": rhel_b,
        "deb-img": trees.debian12_tree(),
    }
    return [(name, capture(tmp / name, tree, tmp / f"{name}.json").read_bytes()) for name, tree in specs.items()]


def _doc(host: Host) -> dict:
    report = run_audit(make_plugins(entry_points=False), host, DEFAULT_POLICY)
    doc = report_dict(report, exit_code=int(exit_code(report)))
    doc.pop("started_at")
    doc.pop("duration_ms")
    for r in doc["results"]:
        r.pop("duration_ms")
    return doc


def test_audits_with_the_cache_are_audits_without_it(tmp_path: Path) -> None:
    hosts = _hosts(tmp_path)
    cache = ParseCache()
    shared = []
    for _ in range(2):  # the second round takes everything from the cache
        shared += [_doc(host_from_snapshot(parse_snapshot(blob, cache=cache), name=name, parse_cache=cache))
                   for name, blob in hosts]
    from audit.boot import reader

    reader._runs.clear()  # GRUB runs kept from the shared rounds: alone means alone
    alone = []
    for name, blob in hosts:
        reader._runs.clear()
        alone.append(_doc(host_from_snapshot(parse_snapshot(blob), name=name)))
    assert shared == alone + alone
    assert [d["results"] for d in alone[3:5]] != [alone[3]["results"]] * 2  # el9 and el9-b differ
    assert cache.hits > 0
    # every value kept is still what its text parses to: no check changed a shared value
    for (parser, text), (value, make, _) in list(cache._entries.items()):
        if parser is ParseCache.content:
            continue
        if isinstance(text, bytes):  # kept by the bytes a host read (Host.parse)
            text = text.decode("utf-8", errors="replace")
        assert value == parser(text), parser
        if make is not None:
            assert make() == value and make() is not value


def test_copies_are_deep_enough() -> None:
    value = {"a": [1, {"b": {2}}], "t": (1, [2])}
    from audit.host.core import _copier

    ok, make = _copier(value)
    assert ok and make is not None
    other = make()
    other["a"][1]["b"].add(3)
    other["t"][1].append(4)
    assert value == {"a": [1, {"b": {2}}], "t": (1, [2])}
    assert copy.deepcopy(value) == make()


class _Files:
    """A GrubFiles over a dict: path -> text."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files
        self.asked = 0

    def exists(self, path: str, *, nonempty: bool = False) -> bool | None:
        self.asked += 1
        return path in self.files and (not nonempty or bool(self.files[path]))

    def read(self, path: str) -> tuple[str, str] | None:
        self.asked += 1
        return (path, self.files[path]) if path in self.files else None


def test_a_grub_run_is_reused_only_where_every_file_answers_the_same() -> None:
    from audit.boot import reader
    from tests.trees import grubenv

    reader._runs.clear()
    script = reader.parse_script("load_env -f /grubenv\nif [ -f /extra.cfg ]; then source /extra.cfg; fi\n"
                                 "menuentry 'x' { linux /vmlinuz $kernelopts }\n")
    env_a = {"/grubenv": grubenv(kernelopts="quiet")}
    seen = _Files(env_a)
    once = reader.run_script(script, label="/grub.cfg", files=seen, platform="pc")
    # the first run of a script is not recorded (a one-host run never needs it): the next one is
    assert list(reader._runs.values()) == [[]]
    first = reader.run_script(script, label="/grub.cfg", files=_Files(env_a), platform="pc")
    assert first is not once and first.env == once.env
    again = _Files(dict(env_a))
    assert reader.run_script(script, label="/grub.cfg", files=again, platform="pc") is first
    assert again.asked  # the files were still looked at, to compare them
    other = reader.run_script(script, label="/grub.cfg", files=_Files({"/grubenv": grubenv(kernelopts="ro")}),
                              platform="pc")
    assert other is not first and other.env["kernelopts"] == "ro"
    extra = reader.run_script(script, label="/grub.cfg", files=_Files({**env_a, "/extra.cfg": "set k=1\n"}),
                              platform="pc")
    assert extra is not first and extra.env.get("k") == "1"
    assert reader.run_script(script, label="/grub.cfg", files=_Files(env_a), platform="efi") is not first
    assert reader.run_script(script, label="/grub.cfg", files=_Files(env_a), platform="pc") is first
