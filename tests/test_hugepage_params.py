"""Huge page boot parameters, replayed the way mm/hugetlb.c parses them (hugetlbpage.rst)."""

from __future__ import annotations

import pytest

from audit.errors import ParseError
from audit.parsers.cmdline import tokenize
from audit.parsers.hugepages import format_size, hugepage_request, parse_size

K, M, G = 1 << 10, 1 << 20, 1 << 30
X86 = 2 * M


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("2M", 2 * M),
        ("2m", 2 * M),
        ("2MB", 2 * M),  # memparse stops after the unit: the kernel reads 2MB as 2M
        ("2MiB", 2 * M),
        ("1G", G),
        ("1GB", G),
        ("2048K", 2 * M),
        ("1024M", G),
        ("2097152", 2 * M),  # no unit: bytes
        ("2048", 2048),
        ("0x200000", 2 * M),  # strtoull base 0
        ("1T", 1 << 40),
    ],
)
def test_parse_size_like_memparse(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "M", "two", "-2M"])
def test_parse_size_rejects_non_numbers(text):
    with pytest.raises(ParseError):
        parse_size(text)


def test_format_size():
    assert [format_size(s) for s in (2 * M, G, 64 * K, 3000)] == ["2M", "1G", "64K", "3000B"]


def req(cmdline: str, default: int | None = X86, **kw):
    return hugepage_request(tokenize(cmdline), default, **kw)


def test_pairs_in_order():
    r = req("quiet hugepagesz=1G hugepages=16 hugepagesz=2M hugepages=1024")
    assert r.pools == {G: 16, 2 * M: 1024}
    assert r.problems == ()
    assert r.tokens[G] == ("hugepagesz=1G", "hugepages=16")
    assert r.default_size == X86 and r.default_size_token is None


def test_hugepages_alone_is_the_default_size():
    r = req("hugepages=512")
    assert r.pools == {X86: 512}
    assert r.problems == ()


def test_hugepages_alone_with_unknown_default_size_is_kept_unsized():
    r = req("hugepages=512", default=None)
    assert r.pools == {} and r.unsized_count == 512 and r.requested


@pytest.mark.parametrize(
    "cmdline",
    ["hugepages=256", "default_hugepagesz=2M hugepages=256", "hugepages=256 default_hugepagesz=2M"],
)
def test_documented_equivalent_forms(cmdline):
    # hugetlbpage.rst: "will all result in 256 2M huge pages being allocated"
    assert req(cmdline).pools == {2 * M: 256}


def test_default_hugepagesz_anywhere_moves_the_implicit_count():
    r = req("hugepages=4 transparent_hugepage=never default_hugepagesz=1G")
    assert r.pools == {G: 4}
    assert r.default_size == G and r.default_size_token == "default_hugepagesz=1G"


def test_implicit_count_wins_over_an_explicit_default_size_pair():
    # hugetlbpage.rst: 256 pages, and hugepages=512 is reported as ignored
    r = req("hugepages=256 hugepagesz=2M hugepages=512")
    assert r.pools == {2 * M: 256}
    assert "hugepages=512" in r.ignored
    assert r.problems


def test_image_factory_154_misordered_pairs():
    # siderolabs/image-factory #154: sizes first, counts after: the second count is ignored and
    # the 1G pool gets nothing
    r = req("hugepagesz=1G hugepagesz=2M hugepages=32 hugepages=1024")
    assert r.pools == {G: 0, 2 * M: 32}
    assert r.ignored == ("hugepages=1024",)
    assert any("twice without a hugepagesz" in p for p in r.problems)
    assert any("hugepagesz=1G: no hugepages= follows" in p for p in r.problems)


def test_same_size_twice_is_ignored_with_its_count():
    r = req("hugepagesz=2M hugepages=16 hugepagesz=2M hugepages=32")
    assert r.pools == {2 * M: 16}
    assert r.ignored == ("hugepagesz=2M", "hugepages=32")


def test_default_size_may_be_named_again_once_before_its_count():
    r = req("default_hugepagesz=1G hugepagesz=1G hugepages=8")
    assert r.pools == {G: 8} and r.problems == ()


def test_default_hugepagesz_twice_first_wins():
    r = req("default_hugepagesz=1G default_hugepagesz=2M")
    assert r.default_size == G
    assert r.ignored == ("default_hugepagesz=2M",)


def test_node_format():
    r = req("hugepagesz=2M hugepages=0:1,1:2")
    assert r.pools == {2 * M: 3}
    assert r.nodes == {2 * M: {0: 1, 1: 2}}


@pytest.mark.parametrize("value", ["0:1,x", "0:", "abc", "0:1,1"])
def test_invalid_counts_are_ignored(value):
    r = req(f"hugepagesz=2M hugepages={value}")
    assert r.pools == {2 * M: 0}
    assert f"hugepages={value}" in r.ignored


def test_unit_on_a_count_is_reported():
    r = req("hugepagesz=1G hugepages=16G")
    assert r.pools == {G: 16}
    assert any("page count" in p for p in r.problems)


def test_size_without_unit_is_bytes():
    r = req("hugepagesz=2048 hugepages=4")
    assert r.pools == {}
    assert any("a number without a unit is bytes" in p for p in r.problems)
    assert r.ignored == ("hugepagesz=2048", "hugepages=4")


def test_valid_sizes_from_the_cpu():
    # x86-64 without pdpe1gb: 1G is unsupported, and the count after it is ignored
    r = req("hugepagesz=1G hugepages=4 hugepagesz=2M hugepages=8", valid_sizes={2 * M})
    assert r.pools == {2 * M: 8}
    assert r.ignored == ("hugepagesz=1G", "hugepages=4")


def test_dash_spelling_and_2mb_units_from_centos6_sample():
    r = req("ro rhgb quiet hugepagesz=2MB hugepages=512 default_hugepagesz=2MB intel_iommu=on")
    assert r.pools == {2 * M: 512} and r.default_size == 2 * M and r.problems == ()
    assert req("default-hugepagesz=1G hugepages=2").pools == {G: 2}


def test_no_hugepage_parameters():
    r = req("ro quiet")
    assert r.pools == {} and not r.requested and r.problems == ()


def test_the_cpu_aware_replay_agrees_with_valid_sizes_on_current_kernels():
    # audit.host.pagesizes.replay reads the same line with the sizes of the CPU and the release of
    # the kernel; on a current kernel its pools are the parser's with valid_sizes
    from audit.host.pagesizes import PageSizes, replay

    no_1g = PageSizes(arch="x86_64", accepted=frozenset({2 * M}), rejected={G: "this CPU has no pdpe1gb"},
                      default_size=2 * M)
    line = "hugepagesz=1G hugepages=4 hugepagesz=2M hugepages=8"
    assert replay(tokenize(line), no_1g, "6.1.0").request.pools == req(line, valid_sizes={2 * M}).pools
    # before 4.7 the 4 went to the 2M default, and before 5.8 the explicit 8 for 2M won over it
    assert replay(tokenize(line), no_1g, "4.4.0").request.pools == {2 * M: 8}
