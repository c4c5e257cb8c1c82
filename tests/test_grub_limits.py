"""Bounds on the work a GRUB configuration (and a sysctl.d file) may cause: loops and fan-outs of
``source``, evaluation steps, exponential variable growth, menu entries, ``blscfg`` and BLS entries,
oversized grubenv blocks and sysctl lines. A limit that runs out is an error naming the file and the
line, never a hang and never a pass. Inputs are the real samples in tests/data/grub/, grown."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.engine import collect_checks, run_check
from audit.errors import FactError, ParseError
from audit.host.core import Host
from audit.model import Status
from audit.parsers.grub import (
    expand_bls_options,
    limits,
    parse_bls_entry,
    parse_grub_script,
    parse_grubenv,
    parse_kernel_cmdline_file,
    parse_legacy_grub,
    parse_shell_vars,
    run_grub_script,
    sort_bls_names,
)
from audit.parsers.grub.evaluator import _test
from audit.parsers.grub.kernel import entry_kernel
from audit.parsers.grub.lexer import _lex
from audit.parsers.grub.limits import GrubLimitError, Meter
from audit.parsers.sysctl import MAX_LINE, SysctlFileError, effective_sysctl, parse_sysctl_conf
from audit.plugins import make_plugins
from audit.policy import DEFAULT_POLICY
from tests import trees

DATA = Path(__file__).parent / "data" / "grub"
CFG = "/boot/grub/grub.cfg"
BOOT_CHECKS = ("boot.drift", "boot.params", "iommu.enabled")


def sample(name: str) -> str:
    return (DATA / name).read_bytes().decode("utf-8")


class Files:
    """GrubFiles over a dict of paths; counts reads."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files
        self.reads = 0

    def exists(self, path: str, *, nonempty: bool = False) -> bool | None:
        text = self.files.get(path)
        return text is not None and (bool(text) or not nonempty)

    def read(self, path: str) -> tuple[str, str] | None:
        self.reads += 1
        return (path, self.files[path]) if path in self.files else None


def run(files: dict[str, str], label: str = CFG, **kw: object):
    return run_grub_script(parse_grub_script(files[label]), label=label, files=Files(files), **kw)  # type: ignore[arg-type]


def limit_error(files: dict[str, str], label: str = CFG, **kw: object) -> GrubLimitError:
    with pytest.raises(GrubLimitError) as exc:
        run(files, label, **kw)
    return exc.value


# -- source / configfile: loops, fan-out, nesting --------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3, 5, 50])
def test_a_file_sourcing_itself_is_a_loop_named_at_its_line(k):
    """Issue: k lines of 'source /boot/grub/grub.cfg' took 9.4 s at k=3, >100 s and 0.9 GB at k=5."""
    real = sample("debian12-grub.cfg")
    cfg = real + f"source {CFG}\n" * k
    files = Files({CFG: cfg})
    with pytest.raises(GrubLimitError) as exc:
        run_grub_script(parse_grub_script(cfg), label=CFG, files=files)
    err = exc.value
    assert err.source == CFG and err.line == real.count("\n") + 1
    assert f"loads {CFG} while it is running, with the same variables: a loop without end ({CFG} -> {CFG})" in (
        err.problem
    )
    # the first nested pass starts with what the top pass set (and $config_directory), the second
    # with the same variables as the first: that repetition is the loop
    assert files.reads == 3
    assert isinstance(err, ParseError) and isinstance(err, FactError)
    assert str(err).startswith(f"{CFG}:{err.line}: 'source {CFG}'")


def test_a_loop_through_other_files_names_the_chain():
    files = {
        CFG: sample("ubuntu2204-cloudimg-grub.cfg") + "source /boot/grub/a.cfg\n",
        "/boot/grub/a.cfg": "set a=1\nsource /boot/grub/b.cfg\n",
        "/boot/grub/b.cfg": "set b=1\n\nsource /boot/grub/grub.cfg\n",
    }
    err = limit_error(files)
    assert err.source == "/boot/grub/b.cfg" and err.line == 3
    assert f"a loop without end ({CFG} -> /boot/grub/a.cfg -> /boot/grub/b.cfg -> {CFG})" in err.problem


def test_sourcing_one_file_twice_in_a_row_is_no_loop():
    custom = "menuentry 'custom' {\n linux /vmlinuz-c ro\n}\n"
    files = {CFG: "source /boot/grub/custom.cfg\nsource /boot/grub/custom.cfg\n", "/boot/grub/custom.cfg": custom}
    assert [m.title for m in run(files).menu] == ["custom", "custom"]


def test_a_self_source_behind_a_guard_the_evaluator_decides_is_no_loop():
    cfg = sample("debian12-grub.cfg") + f'if [ -z "$again" ]; then\n set again=1\n source {CFG}\nfi\n'
    run_ = run({CFG: cfg})
    assert run_.files == (CFG, CFG) and run_.menu  # the second pass skips the guarded source


def test_a_fan_out_of_distinct_files_stops_at_the_file_budget():
    """No loop, but each of 8 levels sources the next one 8 times: 8**8 loads without a bound."""
    files = {CFG: "source /boot/grub/l1.cfg\n" * 8}
    for level in range(1, 8):
        files[f"/boot/grub/l{level}.cfg"] = f"set x{level}=1\n" + f"source /boot/grub/l{level + 1}.cfg\n" * 8
    files["/boot/grub/l8.cfg"] = "set leaf=1\n"
    reader = Files(files)
    with pytest.raises(GrubLimitError) as exc:
        run_grub_script(parse_grub_script(files[CFG]), label=CFG, files=reader)
    assert f"more than {limits.MAX_FILES} files read by one configuration" in exc.value.problem
    assert exc.value.source.startswith("/boot/grub/l") and exc.value.line is not None
    assert reader.reads == limits.MAX_FILES + 1


def test_files_loaded_too_deep_are_an_error_not_skipped():
    files = {CFG: "source /boot/grub/d1.cfg\n"}
    for level in range(1, 12):
        files[f"/boot/grub/d{level}.cfg"] = f"source /boot/grub/d{level + 1}.cfg\n"
    files["/boot/grub/d12.cfg"] = "set deep=1\n"
    err = limit_error(files)
    assert "files loaded more than 8 deep" in err.problem and err.source == "/boot/grub/d8.cfg"


def test_configfile_loops_stay_a_problem_and_an_empty_menu():
    files = {CFG: "configfile /boot/grub/a.cfg\n", "/boot/grub/a.cfg": "configfile /boot/grub/a.cfg\n"}
    run_ = run(files)
    assert run_.menu == () and any("again (a loop)" in p for p in run_.problems)


def test_a_limit_in_a_sourced_file_names_that_file_instead_of_skipping_it():
    big = "".join(f"set v{i}=x\n" for i in range(limits.MAX_WORDS + 1))
    files = {CFG: sample("debian12-grub.cfg") + "source /boot/grub/big.cfg\n", "/boot/grub/big.cfg": big}
    err = limit_error(files)
    assert err.source == "/boot/grub/big.cfg" and f"more than {limits.MAX_WORDS} words" in err.problem


def test_a_syntax_error_in_a_sourced_file_is_still_a_problem_not_an_error():
    files = {CFG: "source /boot/grub/bad.cfg\nmenuentry ok {\n linux /v\n}\n", "/boot/grub/bad.cfg": "if true\n"}
    run_ = run(files)
    assert [m.title for m in run_.menu] == ["ok"] and any("bad.cfg" in p and "not used" in p for p in run_.problems)


# -- evaluation steps, expansion, menu items ----------------------------------------------------------


def test_evaluation_steps_are_counted_across_files_and_calls():
    files = {CFG: sample("rhel72-grub.cfg") + "source /boot/grub/extra.cfg\n",
             "/boot/grub/extra.cfg": sample("ubuntu2204-cloudimg-grub.cfg")}
    steps = run(files).steps
    assert 50 < steps < 1000  # real configurations: tens to hundreds of steps
    err = limit_error(files, meter=Meter(max_steps=steps - 1))
    assert err.source == "/boot/grub/extra.cfg" and "evaluation stopped after" in err.problem  # the last step


def test_function_fan_out_is_bounded():
    cfg = "function f {\n set x=1\n f\n f\n}\nf\nmenuentry a {\n linux /v\n}\n"
    run_ = run({CFG: cfg})  # recursion: at most MAX_CALLS deep and MAX_CALLS_TOTAL calls
    assert 0 < run_.steps < limits.MAX_STEPS // 10 and [m.title for m in run_.menu] == ["a"]


def test_a_variable_doubled_on_every_line_runs_out_of_expansion_budget():
    cfg = "set x=0123456789abcdef\n" + "set x=$x$x\n" * 40 + "menuentry a {\n linux /v $x\n}\n"
    err = limit_error({CFG: cfg})
    assert err.source == CFG and "variable expansion produced more than" in err.problem
    assert err.line is not None and 20 < err.line < 30  # 16 * 2**22 characters: about line 24


def test_a_value_of_many_short_words_is_split_lazily_and_charged():
    cfg = "set x=\"" + "a " * 1_000_000 + "\"\nset y=1\nmenuentry t $x {\n}\n"
    err = limit_error({CFG: cfg}, meter=Meter(max_chars=8 << 20))
    assert "variable expansion produced more than" in err.problem and err.line == 3


def test_shell_variable_doubling_is_a_parse_error_with_the_line():
    text = sample("debian12-grub2-common-default-grub") + 'X="0123456789abcdef"\n' + 'X="$X$X"\n' * 40
    with pytest.raises(ParseError) as exc:
        parse_shell_vars(text, tag="/etc/default/grub")
    assert "produced more than" in exc.value.problem and exc.value.line is not None


@pytest.mark.parametrize("line", ['X="$X ab"', "set X=\"${X}ab\""], ids=["shell", "grub"])
def test_a_value_appended_to_on_every_line_is_bounded_by_the_budget(line):
    """Each line copies the whole value again: quadratic in the lines, so bounded by the budget."""
    text = "X=start\n" + f"{line}\n" * 2000
    with pytest.raises(GrubLimitError) as exc:
        if line.startswith("set"):
            run({CFG: text}, meter=Meter(max_chars=1 << 20))
        else:
            parse_shell_vars(text, tag="/etc/default/grub", meter=Meter(max_chars=1 << 20))
    assert exc.value.line is not None and 500 < exc.value.line < 1100  # about line**2 characters by then


def test_shell_variable_origins_stay_bounded():
    text = 'X="a"\n' + 'X="$X b"\n' * 5000
    var = parse_shell_vars(text, tag="f").variables["X"]
    assert len(var.origins) == 32 and var.origins[-1] == "f:5001" and var.value.count("b") == 5000


def test_too_many_menu_entries_are_an_error_not_a_truncated_menu():
    entry = "menuentry 'e{0}' {{\n linux /vmlinuz-{0} ro\n}}\n"
    cfg = "".join(entry.format(i) for i in range(limits.MAX_MENU_ITEMS + 1))
    err = limit_error({CFG: cfg})
    assert f"more than {limits.MAX_MENU_ITEMS} menu entries" in err.problem
    assert err.line == 3 * limits.MAX_MENU_ITEMS + 1


def test_blscfg_commands_are_bounded():
    cfg = sample("el8-bls-grub.cfg") + "blscfg\n" * limits.MAX_BLSCFG
    err = limit_error({CFG: cfg})
    assert "'blscfg' commands" in err.problem and err.source == CFG


def test_bls_entry_count_is_bounded():
    names = [f"{i:032x}-5.14.0-{i}.el9.x86_64" for i in range(limits.MAX_BLS_ENTRIES + 1)]
    with pytest.raises(GrubLimitError) as exc:
        sort_bls_names(names, source="/boot/loader/entries")
    assert exc.value.source == "/boot/loader/entries" and "1025 BLS entries" in exc.value.problem
    assert len(sort_bls_names(names[:5])) == 5


def test_bls_options_expansion_is_bounded():
    with pytest.raises(GrubLimitError):
        expand_bls_options("$k " * 100, {"k": "x" * (1 << 20)})
    assert expand_bls_options("$k $k", {"k": "a"})[0] == "a a"


def test_an_oversized_grubenv_is_an_error_naming_it():
    env = "# GRUB Environment Block\n" + "x=" + "y" * (1 << 20) + "\n"
    with pytest.raises(GrubLimitError):
        parse_grubenv(env)
    files = {CFG: "load_env -f /boot/grub/grubenv\n", "/boot/grub/grubenv": env}
    err = limit_error(files)
    assert err.source == "/boot/grub/grubenv" and "environment block of" in err.problem


def test_the_problems_list_is_bounded():
    cfg = "".join(f"configfile /missing{i}.cfg\n" for i in range(500))
    # every configfile of a missing file is a problem; the run goes on
    run_ = run({CFG: cfg})
    assert len(run_.problems) == limits.MAX_PROBLEMS + 1 and run_.problems[-1].startswith("... and 400 more")


def test_entry_kernel_is_bounded_too():
    files = {CFG: "menuentry a {\n set x=0123456789abcdef\n" + " set x=$x$x\n" * 40 + " linux /v $x\n}\n"}
    run_ = run(files)
    with pytest.raises(GrubLimitError) as exc:
        entry_kernel(run_.menu[0], env=run_.env, files=Files(files))  # type: ignore[arg-type]
    assert exc.value.source == CFG and exc.value.line is not None


# -- conditions -------------------------------------------------------------------------------------


def test_many_negations_and_deep_parentheses_do_not_recurse():
    files = Files({})
    assert _test(["!"] * 100_001 + ["x"], files) is False  # odd count: negated
    assert _test(["!"] * 100_000 + ["x"], files) is True
    assert _test(["("] * 100_000 + ["x"] + [")"] * 100_000, files) is None  # undecidable, no RecursionError
    assert _test(["(", "(", "a", "=", "a", ")", ")"], files) is True
    cond = "if " + "! " * 100_001 + "true; then\n set r=yes\nelse\n set r=no\nfi\n"
    assert run({CFG: cond}).env["r"] == "no"


# -- the lexer keeps GRUB's quoting ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        pytest.param('"a\\`b"', [("lit", "a\\`b", True)], id="grub-dq-backquote-not-escaped"),
        pytest.param('"a\\$b\\"c\\\\d"', [("lit", 'a$b"c\\d', True)], id="grub-dq-escapes"),
        pytest.param('"a\\xb"', [("lit", "a\\xb", True)], id="grub-dq-other-backslash-kept"),
        pytest.param("'a\\b\"c'", [("lit", 'a\\b"c', True)], id="single-quotes-take-all"),
        pytest.param("a\\ b", [("lit", "a", False), ("lit", " ", True), ("lit", "b", False)],
                     id="backslash-escapes-blank"),
        pytest.param("$12x", [("var", "12", False), ("lit", "x", False)], id="grub-all-digits"),
        pytest.param("${12}", [("var", "12", False)], id="grub-braced-digits"),
        pytest.param('a"b"\'c\'$d"$e"', [("lit", "a", False), ("lit", "bc", True), ("var", "d", False),
                                        ("var", "e", True)], id="mixed"),
        pytest.param("ab\\\ncd", [("lit", "abcd", False)], id="continuation-inside-word"),
        pytest.param('"ab\\\ncd"', [("lit", "abcd", True)], id="continuation-inside-dq"),
    ],
)
def test_grub_quoting(text, parts):
    (cmd,) = _lex(text + "\n", shell=False)
    (word,) = cmd.words
    assert [(p.kind, p.text, p.quoted) for p in word.parts] == parts


def test_the_shell_keeps_its_own_rules():
    (cmd,) = _lex('"a\\`b" $12\n', shell=True)
    assert [[(p.kind, p.text) for p in w.parts] for w in cmd.words] == [[("lit", "a`b")], [("var", "1"), ("lit", "2")]]


def test_line_numbers_count_newlines_inside_substitutions():
    cmds = _lex("A=$(echo\nx)\nB=`y\nz`\nC=1\n", shell=True)
    assert [c.line for c in cmds] == [1, 3, 5]


def test_equal_words_are_one_object():
    cmds = _lex("insmod part_gpt\ninsmod part_gpt\n", shell=False)
    assert cmds[0].words[1] is cmds[1].words[1]


def test_real_configurations_stay_far_below_the_limits():
    for name in ("debian12-grub.cfg", "el8-bls-grub.cfg", "rhel72-grub.cfg", "ubuntu2204-cloudimg-grub.cfg"):
        run_ = run({CFG: sample(name)})
        assert run_.steps < limits.MAX_STEPS // 100, name


# -- sysctl ----------------------------------------------------------------------------------------


def test_a_sysctl_line_longer_than_systemd_reads_is_an_error_naming_file_and_line():
    """Issue: a 31 MiB single line took 441 MB. Now it is refused without being copied."""
    text = "vm.swappiness = 10\n# a comment\nnet.core.x = " + "1 " * (MAX_LINE // 2) + "\nvm.a = 1\n"
    with pytest.raises(ParseError) as exc:
        parse_sysctl_conf(text)
    assert exc.value.line == 3 and "longer than the 1048576 systemd-sysctl reads" in exc.value.problem
    with pytest.raises(SysctlFileError) as err:
        effective_sysctl({"/etc/sysctl.d/99-big.conf": text})
    assert str(err.value).startswith("/etc/sysctl.d/99-big.conf:3: line of ")


def test_a_sysctl_line_just_under_the_limit_is_read():
    value = "1" * (MAX_LINE - len("k="))
    (s,) = parse_sysctl_conf("k=" + value + "\n")
    assert s.value == value


def test_sysctl_messages_quote_only_the_start_of_a_long_line():
    with pytest.raises(ParseError) as exc:
        parse_sysctl_conf("no assignment " + "x" * 100_000 + "\n")
    assert len(exc.value.problem) < 200 and "(100014 characters)" in exc.value.problem


def test_sysctl_line_numbers_follow_every_line_break_as_before():
    text = "a=1\r\nb=2\rc=3\x0bd=4\u2028e=5\n\nf=6"
    assert [(s.key, s.line) for s in parse_sysctl_conf(text)] == [
        ("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5), ("f", 7)]


# -- end to end: the boot checks report an error naming the file -------------------------------------


@pytest.fixture(scope="module")
def checks():
    return {d.check.id: d.check for d in collect_checks(make_plugins(entry_points=False))[0]}


@pytest.mark.parametrize("check_id", BOOT_CHECKS)
def test_boot_checks_on_a_self_sourcing_grub_cfg_are_errors_naming_it(make_root, checks, check_id):
    tree = trees.debian12_tree()
    tree["boot/grub/grub.cfg"] = str(tree["boot/grub/grub.cfg"]) + f"source {CFG}\n" * 5
    out = run_check(checks[check_id], Host.from_root(str(make_root(tree))), DEFAULT_POLICY)
    assert out.status is Status.ERROR
    assert out.message.startswith(f"{CFG}:") and "a loop" in out.message
    assert [e.source for e in out.evidence] == [CFG]


def test_boot_checks_on_a_bls_directory_too_large_are_errors(make_root, checks):
    tree = trees.rhel9_tree()
    entry = next(v for k, v in tree.items() if k.startswith("boot/loader/entries/"))
    for i in range(limits.MAX_BLS_ENTRIES + 1):
        tree[f"boot/loader/entries/{i:032x}-5.14.0-{i}.el9.x86_64.conf"] = entry
    out = run_check(checks["boot.params"], Host.from_root(str(make_root(tree))), DEFAULT_POLICY)
    assert out.status is Status.ERROR and "BLS entries: more than the 1024 hostaudit reads" in out.message


# -- BLS entries, legacy GRUB, /etc/kernel/cmdline: no amplification ----------------------------------


def test_bls_entry_size_and_keys_are_bounded():
    real = sample(f"bls-rocky8.5-{'6fa25ca775f64accb0d3e53f0e4e6e92'}-5.16.9-custom.conf")
    assert parse_bls_entry(real).linux  # the real one is far below both bounds
    with pytest.raises(GrubLimitError) as exc:
        parse_bls_entry(real + "# padding\n" * (limits.MAX_BLS_ENTRY_BYTES // 10))
    assert "BLS entry of" in exc.value.problem
    with pytest.raises(GrubLimitError) as exc:
        parse_bls_entry(real + "grub_arg --x\n" * limits.MAX_BLS_KEYS)
    assert exc.value.line == real.count("\n") + limits.MAX_BLS_KEYS - len(parse_bls_entry(real).keys) + 1


def test_legacy_grub_entries_modules_and_problems_are_bounded():
    real = sample("centos6-hugepages-grub.conf")
    assert parse_legacy_grub(real).entries  # unchanged on the real sample
    noisy = parse_legacy_grub(real + "!!\n" * 500)
    assert len(noisy.problems) == limits.MAX_PROBLEMS + 1 and noisy.problems[-1].startswith("... and 400 more")
    with pytest.raises(GrubLimitError):
        parse_legacy_grub("".join(f"title t{i}\nkernel /v{i}\n" for i in range(limits.MAX_MENU_ITEMS + 1)))
    with pytest.raises(GrubLimitError):
        parse_legacy_grub("title xen\nkernel /xen.gz\n" + "module /m x\n" * (limits.MAX_LEGACY_MODULES + 1))
    many_options = parse_legacy_grub("title t\nkernel " + "--opt " * 50_000 + "/vmlinuz ro\n")
    assert many_options.entries[0].kernel == "/vmlinuz"


def test_kernel_cmdline_file_is_squeezed_without_splitting_and_bounded():
    assert parse_kernel_cmdline_file("  root=/dev/sda1\n\tro  quiet \n") == "root=/dev/sda1 ro quiet"
    with pytest.raises(GrubLimitError) as exc:
        parse_kernel_cmdline_file("a " * (64 << 10))
    assert exc.value.source == "/etc/kernel/cmdline" and isinstance(exc.value, FactError)


def test_limits_in_the_top_level_file_or_a_bls_entry_are_errors_naming_the_file(make_root) -> None:
    """A bound that runs out is an error naming the file, never 'unknown' (skip) or 'GRUB skips it'."""
    from audit.boot.facts import boot_cmdline
    from audit.host.core import Host
    from audit.parsers.grub import limits

    words = " ".join(["w"] * (limits.MAX_WORDS + 10))
    root = make_root({"boot/grub/grub.cfg": f"echo {words}\n"})
    with pytest.raises(limits.GrubLimitError) as caught:
        Host.from_root(str(root)).fact(boot_cmdline)
    assert caught.value.source == "/boot/grub/grub.cfg"
