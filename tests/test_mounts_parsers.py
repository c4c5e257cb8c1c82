"""/proc/mounts, mountinfo, fstab and hugetlbfs page sizes: parsers tested on strings and real samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.errors import ParseError
from audit.parsers.mounts import (
    decode_octal_escapes,
    find_mount,
    hugetlbfs_mounts,
    hugetlbfs_page_size,
    mounts_at,
    normalize_mount_path,
    parse_fstab,
    parse_mountinfo,
    parse_mounts,
    split_options,
)

PROC = Path(__file__).parent / "data" / "proc"
MIB, GIB = 1024**2, 1024**3


def read(rel: str) -> str:
    return (PROC / rel).read_text(encoding="utf-8")


# --- /proc/mounts: real samples -----------------------------------------------------------------


def test_mounts_this_vm_has_no_hugetlbfs():
    mounts = parse_mounts(read("this-vm/mounts"))
    assert len(mounts) == 19
    assert hugetlbfs_mounts(mounts) == []
    root = mounts_at(mounts, "/")
    assert [(m.source, m.fstype) for m in root] == [("/dev/vda", "ext4")]
    assert root[0].option_map["resuid"] == "65534"
    assert root[0].line == 6


def test_mounts_this_vm_keeps_repeated_rows():
    """devpts and /dev/shm are each mounted twice in the sample: both rows are real."""
    mounts = parse_mounts(read("this-vm/mounts"))
    assert [m.line for m in mounts_at(mounts, "/dev/pts")] == [5, 7]
    assert len(mounts_at(mounts, "/dev/shm")) == 2


def test_mounts_this_vm_hugepages_2m_and_1g():
    mounts = parse_mounts(read("this-vm-hugepages/mounts"))
    assert len(mounts) == 21
    huge = hugetlbfs_mounts(mounts)
    assert [(m.target, m.option_map["pagesize"]) for m in huge] == [
        ("/dev/hugepages", "2M"),
        ("/dev/hugepages1G", "1024M"),
    ]
    assert [hugetlbfs_page_size(m.option_map, 2 * MIB) for m in huge] == [2 * MIB, GIB]
    assert huge[0].options == ("rw", "relatime", "pagesize=2M")
    assert (huge[0].freq, huge[0].passno) == (0, 0)


# --- /proc/mounts: field cases ----------------------------------------------------------------


def test_stacked_hugetlbfs_mounts_are_all_kept():
    """insights keys by mount point and keeps only the last of two stacked mounts."""
    text = (
        "hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n"
        "hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=1024M 0 0\n"
    )
    mounts = parse_mounts(text)
    stacked = mounts_at(mounts, "/dev/hugepages")
    assert [m.option_map["pagesize"] for m in stacked] == ["2M", "1024M"]
    visible = find_mount(mounts, "/dev/hugepages/file")
    assert visible is not None and visible.line == 2


@pytest.mark.parametrize(
    ("escaped", "decoded"),
    [
        (r"/mnt/my\040disk", "/mnt/my disk"),
        (r"/mnt/tab\011here", "/mnt/tab\there"),
        (r"/mnt/new\012line", "/mnt/new\nline"),
        (r"/mnt/back\134slash", "/mnt/back\\slash"),
        ("/mnt/grüße", "/mnt/grüße"),  # the kernel does not escape UTF-8: it must survive
        (r"/mnt/gr\303\274\303\237e", "/mnt/grüße"),  # escaped UTF-8 bytes decode to characters
        (r"/mnt/\040ü\040", "/mnt/ ü "),
        (r"/mnt/not\08escape\x", r"/mnt/not\08escape\x"),
    ],
)
def test_octal_escapes(escaped, decoded):
    assert decode_octal_escapes(escaped) == decoded


def test_octal_escape_of_invalid_utf8_keeps_the_byte():
    assert decode_octal_escapes(r"/mnt/\377").encode("utf-8", "surrogateescape") == b"/mnt/\xff"


def test_mounts_non_ascii_mount_point():
    """unicode-escape turns 'ü' into 'Ã¼' (insights #2069)."""
    (m,) = parse_mounts("hugetlbfs /srv/hüge\\040pages hugetlbfs rw,pagesize=1G 0 0\n")
    assert m.target == "/srv/hüge pages"


def test_mounts_field_bug_29_escaped_hugetlbfs_mount_point():
    text = "hugetlbfs /mnt/huge\\0401G hugetlbfs rw,relatime,pagesize=1024M 0 0\n"
    (m,) = parse_mounts(text)
    assert m.target == "/mnt/huge 1G"
    assert mounts_at([m], "/mnt/huge 1G") == [m]
    assert hugetlbfs_page_size(m.option_map, 2 * MIB) == GIB


def test_mounts_no_root_mount_required():
    """A container or chroot view may lack '/'; insights raised."""
    (m,) = parse_mounts("hugetlbfs /dev/hugepages hugetlbfs rw 0 0\n")
    assert m.fstype == "hugetlbfs"
    assert parse_mounts("") == []


def test_mounts_quoted_option_with_commas():
    text = 'tmpfs /run/x tmpfs rw,context="system_u:object_r:container_file_t:s0:c1,c2",size=64k 0 0\n'
    (m,) = parse_mounts(text)
    assert m.options == ("rw", 'context="system_u:object_r:container_file_t:s0:c1,c2"', "size=64k")
    assert m.option_map == {
        "rw": None,
        "context": "system_u:object_r:container_file_t:s0:c1,c2",
        "size": "64k",
    }


def test_split_options():
    assert split_options("rw,,mode=0,pagesize=2M,mode=755") == (
        ("rw", "mode=0", "pagesize=2M", "mode=755"),
        {"rw": None, "mode": "755", "pagesize": "2M"},
    )
    with pytest.raises(ParseError):
        split_options('context="unterminated,x')


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("proc /proc proc rw 0 0\nbroken line\n", id="too-few-fields"),
        pytest.param("proc /proc proc rw 0 0\nproc /p proc rw x 0\n", id="freq-not-int"),
        pytest.param("proc /proc proc rw 0 0\nproc /p proc rw 0 0 extra\n", id="too-many-fields"),
    ],
)
def test_mounts_malformed_names_the_line(text):
    with pytest.raises(ParseError) as e:
        parse_mounts(text)
    assert e.value.line == 2


# --- paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "normal"),
    [
        ("//dev//hugepages/", "/dev/hugepages"),
        ("/dev/hugepages", "/dev/hugepages"),
        ("//", "/"),
        ("/", "/"),
        ("/./dev/./hugepages/.", "/dev/hugepages"),
        ("dev//hugepages", "dev/hugepages"),
        ("", "."),
    ],
)
def test_normalize_mount_path(path, normal):
    assert normalize_mount_path(path) == normal


def test_find_mount_terminates_on_double_slashes():
    """insights' get_dir() looped forever on '//' (61c0e16eb, #1244)."""
    mounts = parse_mounts(read("this-vm-hugepages/mounts"))
    for path in ("//dev//hugepages/", "//", "", "//dev//hugepages1G//x//", "relative/path"):
        find_mount(mounts, path)  # must return
    found = find_mount(mounts, "//dev//hugepages/")
    assert found is not None and found.fstype == "hugetlbfs"
    found = find_mount(mounts, "//dev//hugepages1G//x//")
    assert found is not None and found.option_map["pagesize"] == "1024M"
    found = find_mount(mounts, "/dev/hugepagesX")  # a prefix of a name is not a parent
    assert found is not None and found.target == "/dev"
    found = find_mount(mounts, "//")
    assert found is not None and found.target == "/"


def test_find_mount_without_root():
    mounts = parse_mounts("hugetlbfs /dev/hugepages hugetlbfs rw 0 0\n")
    assert find_mount(mounts, "/srv") is None


def test_mounts_at_matches_unnormalised_targets():
    mounts = parse_mounts("hugetlbfs //dev/hugepages/ hugetlbfs rw 0 0\n")
    assert len(mounts_at(mounts, "/dev//hugepages")) == 1


# --- hugetlbfs page size ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "size"),
    [
        ({"rw": None, "pagesize": "2M"}, 2 * MIB),
        ({"pagesize": "1024M"}, GIB),
        ({"pagesize": "1G"}, GIB),
        ({"pagesize": "1g"}, GIB),
        ({"pagesize": "2048k"}, 2 * MIB),
        ({"pagesize": "2MB"}, 2 * MIB),
        ({"pagesize": "2097152"}, 2 * MIB),
        ({"rw": None, "relatime": None}, 2 * MIB),  # default size
        ("rw,pagesize=1G,size=4G", GIB),  # a systemd Options= value
        (("rw", "pagesize=1G"), GIB),  # an options tuple
        ("nosuid,nodev", 2 * MIB),
    ],
)
def test_hugetlbfs_page_size(options, size):
    assert hugetlbfs_page_size(options, 2 * MIB) == size


@pytest.mark.parametrize(
    "options",
    [{"pagesize": "big"}, {"pagesize": None}, {"pagesize": ""}, {"pagesize": "0M"}, {"pagesize": "-2M"}],
)
def test_hugetlbfs_page_size_malformed(options):
    with pytest.raises(ParseError):
        hugetlbfs_page_size(options, 2 * MIB)


# --- /proc/self/mountinfo -----------------------------------------------------------------------


def test_mountinfo_joins_superblock_options():
    text = (
        "22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
        "40 22 0:38 / /dev/hugepages rw,relatime shared:20 master:3 - hugetlbfs hugetlbfs rw,pagesize=2M\n"
        "41 22 0:39 / /mnt/gr\\303\\274n\\040x rw - hugetlbfs none rw,pagesize=1024M,size=4G\n"
    )
    root, huge, other = parse_mountinfo(text)
    assert (root.mount_id, root.parent_id, root.root, root.target) == (22, 1, "/", "/")
    assert huge.options == ("rw", "relatime", "pagesize=2M")
    assert huge.super_options == ("rw", "pagesize=2M")
    assert hugetlbfs_page_size(huge.option_map, 0) == 2 * MIB
    assert other.target == "/mnt/grün x"
    assert other.source == "none"
    assert hugetlbfs_page_size(other.option_map, 0) == GIB
    assert other.line == 3


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("22 1 252:1 / / rw,relatime shared:1 ext4 /dev/vda rw\n", id="no-separator"),
        pytest.param("22 1 252:1 / / rw - ext4 /dev/vda\n", id="short-after-separator"),
        pytest.param("x 1 252:1 / / rw - ext4 /dev/vda rw\n", id="id-not-int"),
    ],
)
def test_mountinfo_malformed(text):
    with pytest.raises(ParseError) as e:
        parse_mountinfo(text)
    assert e.value.line == 1


# --- /etc/fstab -------------------------------------------------------------------------------

FSTAB = """\
# /etc/fstab: static file system information.
#
UUID=0a3407de-014b-458b-b5c1-848e92a327a3 /               ext4    errors=remount-ro 0       1

/dev/sdb1       /srv/my\\040data  xfs     defaults,noatime  0 2
hugetlbfs       /dev/hugepages1G  hugetlbfs  pagesize=1G
hugetlbfs       /dev/hugepages    hugetlbfs
  # indented comment
/swapfile none swap sw 0 0  # trailing comment
hugetlbfs       /dev/hugepages1G  hugetlbfs  pagesize=1G,mode=1770,gid=kvm 0 0
"""


def test_fstab_columns_defaults_and_line_numbers():
    entries = parse_fstab(FSTAB)
    assert [e.line for e in entries] == [3, 5, 6, 7, 9, 10]
    root, data, huge1g, huge, swap, dup = entries
    assert (root.spec, root.file, root.vfstype, root.freq, root.passno) == (
        "UUID=0a3407de-014b-458b-b5c1-848e92a327a3",
        "/",
        "ext4",
        0,
        1,
    )
    assert data.file == "/srv/my data"
    assert data.options == ("defaults", "noatime")
    assert (huge1g.options, huge1g.freq, huge1g.passno) == (("pagesize=1G",), 0, 0)
    assert hugetlbfs_page_size(huge1g.option_map, 2 * MIB) == GIB
    assert huge.options == ("defaults",)
    assert huge.option_map == {"defaults": None}
    assert hugetlbfs_page_size(huge.option_map, 2 * MIB) == 2 * MIB
    assert swap.file == "none" and swap.vfstype == "swap"
    # Duplicated entries are both kept, each with its own line (insights 07582ba4d bound the wrong one).
    assert (dup.file, dup.line, dup.option_map["gid"]) == ("/dev/hugepages1G", 10, "kvm")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("# c\n/dev/sda1 / ext4 defaults zero 1\n", 2, id="freq-not-int"),
        pytest.param("/dev/sda1 / ext4 defaults 0 1\n\n/dev/sdb /x xfs defaults 0 x\n", 3, id="passno-not-int"),
        pytest.param("/dev/sda1 /\n", 1, id="too-few"),
        pytest.param("/dev/sda1 / ext4 defaults 0 1 extra\n", 1, id="too-many"),
    ],
)
def test_fstab_malformed_names_the_line(text, line):
    with pytest.raises(ParseError) as e:
        parse_fstab(text)
    assert e.value.line == line


def test_fstab_empty():
    assert parse_fstab("") == []
    assert parse_fstab("# only comments\n\n") == []
