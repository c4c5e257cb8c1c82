"""The GRUB lexer, expansion, script parser and evaluator, and the sysctl parser, do work linear in
their input: counted, never timed. Each case runs at 1x and 4x its input and compares

- the parsers' own counters: words and commands produced, lexer passes, characters scanned and
  copied (``LexStats``), evaluation steps (``GrubRun.steps``);
- the Python and C function calls made (``sys.setprofile``), which also sees loops the counters do
  not instrument;
- the peak allocation (``tracemalloc``).

None may grow more than 5x (4x plus slack). Inputs are grown from the real samples in tests/data/grub/.
What call counts cannot see is quadratic work inside one C call (a string concatenated in a loop
copies more each time); the lexer's ``copied`` counter is where that would show.

Not here: inputs whose meaning is super-linear (``set x=$x$x`` on each line doubles a value;
``X="$X more"`` on each line copies a growing value): their work is bounded by the expansion budget
instead, tested in tests/test_grub_limits.py.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from audit.errors import ParseError
from audit.parsers.grub import parse_grub_script, parse_shell_vars, run_grub_script
from audit.parsers.grub.lexer import LexStats
from audit.parsers.grub.limits import MAX_WORDS, GrubLimitError
from audit.parsers.sysctl import parse_sysctl_conf
from tests.workcount import count_work

DATA = Path(__file__).parent / "data" / "grub"
CFG = "/boot/grub/grub.cfg"
RATIO = 5


def sample(name: str) -> str:
    return (DATA / name).read_bytes().decode("utf-8")


RHEL72 = sample("rhel72-grub.cfg")
RHEL72_HEAD, _, _rest = RHEL72.partition("### BEGIN /etc/grub.d/10_linux ###")
#: the first real menu entry of the RHEL 7.2 sample, as a template
RHEL72_ENTRY = _rest[_rest.index("menuentry ") : _rest.index("\n}\n") + 3]
DEBIAN = sample("debian12-grub.cfg")


class Files:
    def __init__(self, files: dict[str, str]) -> None:
        self.files = files

    def exists(self, path: str, *, nonempty: bool = False) -> bool | None:
        return path in self.files

    def read(self, path: str) -> tuple[str, str] | None:
        return (path, self.files[path]) if path in self.files else None


def grub(text: str, files: dict[str, str] | None = None) -> Callable[[], dict[str, int]]:
    """Parse and run ``text`` as /boot/grub/grub.cfg; the counters of both."""

    def go() -> dict[str, int]:
        stats = LexStats()
        try:
            run = run_grub_script(parse_grub_script(text, stats=stats), label=CFG, files=Files(files or {CFG: text}))
            steps = run.steps
        except GrubLimitError:
            steps = -1
        return {"words": stats.words, "commands": stats.commands, "lex steps": stats.steps,
                "scanned": stats.scanned, "copied": stats.copied, "eval steps": steps}

    return go


def measure(fn: Callable[[], dict[str, int]]) -> dict[str, int]:
    counters, calls, peak = count_work(fn)
    return {**counters, "calls": calls, "peak bytes": peak}


FLOORS = {"calls": 200, "peak bytes": 64 * 1024}


def assert_linear(case: str, make: Callable[[int], Callable[[], dict[str, int]]], n: int) -> dict[str, int]:
    one = measure(make(n))
    four = measure(make(4 * n))
    for key in one:
        floor = FLOORS.get(key, 1)
        assert four[key] <= RATIO * max(one[key], floor), f"{case}: {key} {one[key]} at 1x, {four[key]} at 4x"
    return four


# -- GRUB scripts -------------------------------------------------------------------------------------

CASES: dict[str, tuple[Callable[[int], Callable[[], dict[str, int]]], int]] = {
    # the issue: 3.8 s at 256 KiB, 31 s at 1 MiB
    "long word": (lambda n: grub(RHEL72_HEAD + "set x=" + "A" * n + "\nset y=$x\n"), 16 << 10),
    "long double-quoted word": (lambda n: grub('set x="' + "a $y b\\$ " * n + '"\n'), 2 << 10),
    "many short words": (lambda n: grub(DEBIAN + "insmod part_gpt ext2 " * n + "\n"), 2 << 10),
    "many unique words": (lambda n: grub(DEBIAN + "".join(f"set v{i}=x{i} w{i}\n" for i in range(n))), 512),
    "deep quoting": (
        lambda n: grub(RHEL72_HEAD + "set x=" + "'a b'\"c $y d\"\\e${y}'\"'\"'\"" * n + "\nmenuentry $x {\n}\n"),
        512,
    ),
    "many lines of real commands": (lambda n: grub(RHEL72_HEAD * n), 8),
    "many menu entries": (
        lambda n: grub(RHEL72_HEAD + "".join(RHEL72_ENTRY.replace("3.10.0-327", f"3.10.0-{i}") for i in range(n))),
        100,
    ),
    "many submenus": (
        lambda n: grub(DEBIAN + "".join(f"submenu 's{i}' {{\n menuentry 'e{i}' {{\n  linux /v{i}\n }}\n}}\n"
                                        for i in range(n))),
        100,
    ),
    "many source lines": (
        lambda n: grub(DEBIAN + "source /boot/grub/extra.cfg\n" * n,
                       {CFG: DEBIAN + "source /boot/grub/extra.cfg\n" * n,
                        "/boot/grub/extra.cfg": "menuentry 'extra' {\n linux /vmlinuz-extra ro\n}\n"}),
        12,
    ),
    "many self-source lines (a loop)": (
        lambda n: grub(DEBIAN + f"source {CFG}\n" * n), 50,
    ),
    "nested ifs": (lambda n: grub("if true; then\n" * n + "set x=1\n" + "fi\n" * n), 12),
    "long conditions": (lambda n: grub("if [ " + "! " * n + "x = x ]; then\n set r=1\nfi\n"), 16 << 10),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_grub_work_grows_linearly(case: str) -> None:
    make, n = CASES[case]
    assert_linear(case, make, n)


def test_the_long_word_is_one_pass_and_one_copy() -> None:
    """Not only linear: the lexer takes a plain word in one regular-expression match (four passes:
    ``set``, the blank, the word, the newline) and copies it once."""
    for n in (1 << 10, 64 << 10):
        counters = grub("set x=" + "A" * n + "\n")()
        assert counters["lex steps"] == 4 and counters["scanned"] == n + 7 and counters["copied"] == n + 5


def test_a_script_at_the_word_budget_stays_under_a_memory_bound() -> None:
    """100,000 menu entries (600,000 words): the lexer stops at MAX_WORDS with an error naming the
    line; what it held until then stays under 64 MiB (about 230 bytes a word at most)."""
    text = "".join(f"menuentry 'CentOS Linux (3.10.0-{i}.el7.x86_64)' {{\n linux16 /vmlinuz-{i} ro\n}}\n"
                   for i in range(100_000))
    tracemalloc.start()
    try:
        with pytest.raises(GrubLimitError) as exc:
            parse_grub_script(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert f"more than {MAX_WORDS} words" in exc.value.problem and exc.value.line is not None
    assert peak < 64 << 20, f"{peak / 2**20:.1f} MiB"


def test_a_script_with_entries_up_to_the_menu_limit_stays_under_a_memory_bound() -> None:
    """10,000 real-shaped entries (the menu limit) parsed and run: under 48 MiB, about 5 KiB an entry."""
    entry = "menuentry 'CentOS Linux (3.10.0-{0}.el7.x86_64) 7 (Core)' --class centos {{\n" \
            "\tlinux16 /vmlinuz-3.10.0-{0}.el7.x86_64 root=/dev/mapper/centos-root ro crashkernel=auto rhgb quiet\n" \
            "\tinitrd16 /initramfs-3.10.0-{0}.el7.x86_64.img\n}}\n"
    text = RHEL72_HEAD + "".join(entry.format(i) for i in range(10_000))
    tracemalloc.start()
    try:
        run = run_grub_script(parse_grub_script(text), label=CFG, files=Files({}))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(run.menu) == 10_000
    assert peak < 48 << 20, f"{peak / 2**20:.1f} MiB"


# -- shell-variable files and sysctl -----------------------------------------------------------------

DEFAULT_GRUB = sample("debian12-grub2-common-default-grub")

OTHER: dict[str, tuple[Callable[[int], Callable[[], dict[str, int]]], int]] = {
    "default/grub long value": (
        lambda n: lambda: {"vars": len(parse_shell_vars(DEFAULT_GRUB + 'GRUB_CMDLINE_LINUX="' + "quiet " * n + '"\n')
                                       .variables)}, 4 << 10),
    "default/grub many assignments": (
        lambda n: lambda: {"vars": len(parse_shell_vars(DEFAULT_GRUB + "".join(f'GRUB_X{i}="$GRUB_X{i // 2} {i}"\n'
                                                                              for i in range(n))).variables)}, 512),
    "sysctl long line": (lambda n: lambda: {"settings": len(parse_sysctl_conf(
        "net.ipv4.ip_local_reserved_ports = " + "8080," * n + "\n"))}, 16 << 10),
    "sysctl many lines": (lambda n: lambda: {"settings": len(parse_sysctl_conf(
        "".join(f"vm.k{i % 97} = {i}\n# comment {i}\n" for i in range(n))))}, 2 << 10),
    "sysctl line over the limit": (lambda n: lambda: {"error": _sysctl_error("k = " + "1 " * (n << 19) + "\n")}, 1),
}


def _sysctl_error(text: str) -> int:
    try:
        parse_sysctl_conf(text)
    except ParseError as exc:
        return exc.line or 0
    return 0


@pytest.mark.parametrize("case", sorted(OTHER))
def test_other_work_grows_linearly(case: str) -> None:
    make, n = OTHER[case]
    assert_linear(case, make, n)


def test_a_sysctl_line_over_the_limit_is_refused_without_a_copy() -> None:
    """The issue: a 31 MiB line took 441 MB. Refused without copying it: the peak stays tiny."""
    line = "net.core.x = " + "1 " * (31 << 19) + "\n"
    tracemalloc.start()
    try:
        with pytest.raises(ParseError) as exc:
            parse_sysctl_conf(line)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert exc.value.line == 1 and peak < 1 << 20
