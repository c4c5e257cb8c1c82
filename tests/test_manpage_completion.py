"""The man page and the bash and zsh completions: made from the parser, complete, working in a real
shell, carried by the wheel to <prefix>/share, and costing a run nothing at start-up."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from audit.cli import completion
from audit.cli.main import COMMANDS, main
from audit.cli.run import RUN_DESCRIPTION, RUN_EPILOG
from audit.model import Severity
from audit.policy import PROFILES
from reports.output import STDOUT_FORMATS

REPO = Path(__file__).resolve().parents[1]
CI = os.environ.get("CI", "").lower() in ("true", "1")
BASH_COMPLETION = Path("/usr/share/bash-completion/bash_completion")
DATA_FILES = {
    "share/man/man1/hostaudit.1": "man page",
    "share/bash-completion/completions/hostaudit": "bash completion",
    "share/zsh/site-functions/_hostaudit": "zsh completion",
}


def need(tool: str, package: str) -> str:
    """The tool's path; without it a skip that says how to get it (a failure in CI, which installs it)."""
    path = shutil.which(tool)
    if path:
        return path
    message = f"{tool} not installed: apt-get install {package} (bash .ci/install-test-deps does)"
    if CI:
        pytest.fail(message)
    pytest.skip(message)


def load_gen_manpage():
    if importlib.util.find_spec("argparse_manpage") is None:
        message = "argparse-manpage not installed: pip install -e '.[test]'"
        if CI:
            pytest.fail(message)
        pytest.skip(message)
    spec = importlib.util.spec_from_file_location("gen_manpage", REPO / "tools" / "gen_manpage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def words(text: str) -> str:
    return " ".join(text.split())


# --------------------------------------------------------------------------------------- the model


@pytest.fixture(scope="module")
def cmds() -> list[completion.Command]:
    return list(completion.commands(completion.full_parser()))


def test_every_command_and_sub_command_is_completed(cmds):
    by_path = {c.path: c for c in cmds}
    assert list(by_path[()].commands) == list(COMMANDS)
    assert list(by_path[("cpu",)].commands) == ["compare", "baseline", "models"]
    assert ("policy", "show") in by_path


def test_every_value_has_a_completion_or_is_free_text(cmds):
    """A new option whose value is a path or a choice must complete as one: give it choices, a
    metavar naming a FILE, PATH or DIR, or add it to completion.OPTION_VALUES or FREE_TEXT."""
    unknown = [(" ".join(c.path), a.strings or a.metavar, a.metavar) for c in cmds for a in (*c.options, *c.positionals)
               if a.kind == completion.TEXT and a.metavar not in completion.FREE_TEXT]
    assert not unknown


def test_values_known_outside_the_parser(cmds):
    run = next(c for c in cmds if c.path == ("run",))
    kinds = {s: (a.kind, a.words) for a in run.options for s in a.strings}
    assert kinds["--format"] == (completion.WORDS, STDOUT_FORMATS)
    assert kinds["--profile"] == (completion.WORDS, PROFILES)
    assert kinds["--fail-on"] == (completion.WORDS, tuple(str(s) for s in Severity))
    assert kinds["--show"][0] == completion.LIST
    assert kinds["--root"][0] == completion.DIR
    assert kinds["--output"][0] == kinds["--policy"][0] == completion.FILE
    assert kinds["--select"][0] == completion.CHECK


@pytest.mark.parametrize("shell", completion.SHELLS)
def test_completion_command_prints_the_script(shell, capsys):
    assert main(["completion", shell]) == 0
    assert capsys.readouterr().out == completion.script(shell)


def test_completion_command_refuses_another_shell(capsys):
    assert main(["completion", "fish"]) == 2
    assert "invalid choice" in capsys.readouterr().err


# -------------------------------------------------------------------------------------------- bash


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bash") / "hostaudit"
    path.write_text(completion.bash_script())
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("files")
    (d / "imgdir").mkdir()
    (d / "imgfile.json").write_text("{}")
    return d


def complete_bash(script: Path, *line: str, command: str = "hostaudit") -> list[str]:
    """COMPREPLY for the words ``line`` as bash splits them (``--profile=`` is ``--profile``, ``=``),
    the cursor on the last one."""
    code = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; '
            'COMP_POINT=${#COMP_LINE}; _hostaudit "$1" "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"; '
            'printf "%s\\n" "${COMPREPLY[@]}"')
    out = subprocess.run(["bash", "--norc", "--noprofile", "-c", code, "bash", str(script), command, *line],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and not out.stderr, out.stderr
    return [w for w in out.stdout.split("\n") if w]


def test_bash_script_passes_shellcheck(bash_script):
    shellcheck = need("shellcheck", "shellcheck")
    out = subprocess.run([shellcheck, "-s", "bash", str(bash_script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout


@pytest.mark.parametrize(("line", "expected"), [
    pytest.param(("--fo",), ["--format"], id="run-option-at-the-top"),
    pytest.param(("cpu", ""), ["compare", "baseline", "models"], id="sub-commands"),
    pytest.param(("",), list(COMMANDS), id="commands"),
    pytest.param(("--format", ""), list(STDOUT_FORMATS), id="run-formats"),
    pytest.param(("--root", "/mnt/x", "--fail-on", ""), [str(s) for s in Severity], id="after-an-option-value"),
    pytest.param(("run", "--profile", "="), list(PROFILES), id="option=value"),
    pytest.param(("policy", "show", "--profile", "kvm-host-"), ["kvm-host-multitenant"], id="nested-command"),
    pytest.param(("run", "--show", "fail,w"), ["fail,warn", "fail,waived"], id="comma-list"),
    pytest.param(("cpu", "baseline", "--format", ""), ["text", "json", "libvirt", "qemu"], id="choices"),
    pytest.param(("cpu", "models", "--vendor", "a"), ["amd"], id="vendor"),
    pytest.param(("diff", "--st"), ["--strict"], id="sub-command-option"),
    pytest.param(("completion", ""), ["bash", "zsh"], id="shells"),
    pytest.param(("checks", "--format", "json", ""), [], id="no-positional"),
])
def test_bash_completes(bash_script, line, expected):
    assert complete_bash(bash_script, *line) == expected


@pytest.mark.parametrize(("line", "expected"), [
    pytest.param(("--root", "{d}/img"), ["{d}/imgdir"], id="dir-option"),
    pytest.param(("-o", "{d}/img"), ["{d}/imgdir", "{d}/imgfile.json"], id="file-option"),
    pytest.param(("-o", "codequality", ":", "{d}/imgf"), ["{d}/imgfile.json"], id="format-prefix"),
    pytest.param(("--policy", "=", "{d}/imgf"), ["{d}/imgfile.json"], id="option=file"),
    pytest.param(("cpu", "baseline", "{d}/imgfile.json", "{d}/imgf"), ["{d}/imgfile.json"], id="repeated-positional"),
    pytest.param(("diff", "{d}/imgf"), ["{d}/imgfile.json"], id="positional"),
])
def test_bash_completes_paths(bash_script, files, line, expected):
    got = complete_bash(bash_script, *(w.format(d=files) for w in line))
    assert sorted(got) == [e.format(d=files) for e in expected]


def test_bash_completes_check_ids_from_the_command_completed(bash_script):
    exe = Path(sys.executable).with_name("hostaudit")
    if not exe.exists():
        pytest.skip(f"no hostaudit console script beside {sys.executable}: pip install -e .")
    assert "kernel.hugetlbfs" in complete_bash(bash_script, "explain", "kernel.hu", command=str(exe))
    assert "boot.hugepages" in complete_bash(bash_script, "--select", "boot.", command=str(exe))


# --------------------------------------------------------------------------------------------- zsh

ZPTY_HARNESS = r"""
# zsh -f HARNESS FPATH SETUP LINE PATTERN...: type LINE and TAB in an interactive zsh, print what it shows
zmodload zsh/zpty
typeset -F SECONDS
zpty z TERM=dumb zsh -f -i
zpty -w z "PS1='%% '; unset zle_bracketed_paste; fpath=($1 \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z "zstyle ':completion:*' format 'GROUP:%d'; LISTMAX=10000; unsetopt list_ambiguous; $2"
zpty -w z "print -r \$((6*7))READY"
zpty -r z out '*42READY*'
zpty -n -w z "$3"$'\t'
out=
local deadline=$((SECONDS + 15)) chunk pat
while (( SECONDS < deadline )); do
    if zpty -r -t z chunk; then out+=$chunk; else sleep 0.05; fi
    for pat in "${@[4,-1]}"; do [[ $out == *$pat* ]] || continue 2; done
    break
done
print -r -- "$out"
zpty -d z
"""


def complete_zsh(fpath: Path, line: str, expected: list[str], setup: str = "") -> str:
    """What an interactive zsh shows after ``line`` and TAB (it waits for ``expected``, 15 s at most)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    out = subprocess.run(["zsh", "-f", "-c", ZPTY_HARNESS, "zsh", str(fpath), setup, line, *expected],
                         capture_output=True, text=True, timeout=60, env=env)
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.stdout).replace("\r", "")


@pytest.fixture(scope="module")
def zsh_fpath(tmp_path_factory) -> Path:
    need("zsh", "zsh")
    d = tmp_path_factory.mktemp("zsh") / "site-functions"
    d.mkdir()
    (d / "_hostaudit").write_text(completion.zsh_script())
    return d


def test_zsh_script_is_valid_zsh(zsh_fpath):
    out = subprocess.run(["zsh", "-n", str(zsh_fpath / "_hostaudit")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(("line", "expected"), [
    pytest.param("hostaudit cpu ", ["compare", "baseline", "models"], id="sub-commands"),
    pytest.param("hostaudit --fo", ["hostaudit --format"], id="run-option-at-the-top"),
    pytest.param("hostaudit --format ", list(STDOUT_FORMATS), id="run-formats"),
    pytest.param("hostaudit run --profile ", list(PROFILES), id="profiles"),
    pytest.param("hostaudit cpu baseline --format ", ["libvirt", "qemu"], id="choices"),
])
def test_zsh_completes(zsh_fpath, line, expected):
    shown = complete_zsh(zsh_fpath, line, expected)
    assert all(e in shown for e in expected), shown


def test_zsh_script_can_be_sourced(zsh_fpath, tmp_path):
    """source <(hostaudit completion zsh) after compinit: the script registers itself with compdef."""
    empty = tmp_path / "empty"
    empty.mkdir()
    shown = complete_zsh(empty, "hostaudit cpu ", ["compare", "models"], setup=f"source {zsh_fpath / '_hostaudit'}")
    assert "compare" in shown and "models" in shown, shown


# ---------------------------------------------------------------------------------------- man page


@pytest.fixture(scope="module")
def roff() -> str:
    return load_gen_manpage().manpage()


def render(roff_text: str, tmp: Path) -> str:
    groff = need("groff", "groff-base")
    page = tmp / "hostaudit.1"
    page.write_text(roff_text)
    out = subprocess.run([groff, "-man", "-Tascii", "-P-cbou", "-ww", str(page)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and not out.stderr, out.stderr  # no warning either
    return out.stdout


@pytest.fixture(scope="module")
def page(roff, tmp_path_factory) -> str:
    return render(roff, tmp_path_factory.mktemp("man"))


def test_man_page_sections(page):
    for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "EXIT STATUS", "EXAMPLES"):
        assert re.search(rf"^{heading}$", page, re.M), heading
    assert "hostaudit - compliance auditor for KVM virtualization hosts" in words(page)


def test_man_page_has_every_command_and_option(page, cmds):
    flat = words(page)
    for c in cmds[1:]:
        assert f"COMMAND 'hostaudit {' '.join(c.path)}'" in flat
    for c in cmds:
        for arg in (*c.options, *c.positionals):
            if "--help" in arg.strings:
                continue  # argparse-manpage leaves it out: every command has it
            for string in arg.strings:
                assert string in flat, (c.path, string)
            # every help text whole: argparse-manpage alone drops a wrapped line that starts with a dot
            assert words(arg.help) in flat, (c.path, arg.help)


def test_man_page_has_run_description_and_epilog(page):
    flat = words(page)
    for line in RUN_DESCRIPTION.splitlines():
        assert words(line) in flat, line
    exit_status = words(page.split("\nEXIT STATUS\n")[1].split("\nEXAMPLES\n")[0])
    for code, text in re.findall(r"^\s+(\d)\s+(.*(?:\n\s{5,}.*)*)", RUN_EPILOG.split("examples:")[0], re.M):
        assert f"{code} {words(text)}" in exit_status, code
    examples = page.split("\nEXAMPLES\n")[1]
    for line in RUN_EPILOG.split("examples:")[1].strip().splitlines():
        assert line.strip() in examples, line  # verbatim: commands copy as they are, backslash included


def test_man_page_uses_ascii_hyphens_in_commands(roff):
    """A '-' in roff is a hyphen (U+2010 on a UTF-8 terminal), not a minus: '--root' copied from the page
    would not work. argparse-manpage and gen_manpage.py write every one as '\\-'."""
    text_lines = [ln for ln in roff.splitlines() if not ln.startswith((".TH", ".SH"))]
    assert not [ln for ln in text_lines if re.search(r"(?<!\\)-", ln)]


def test_man_page_opens_with_man(roff, tmp_path):
    man = need("man", "man-db")
    path = tmp_path / "hostaudit.1"
    path.write_text(roff)
    out = subprocess.run([man, "-l", str(path)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "MANPAGER": "cat", "PAGER": "cat", "MANWIDTH": "100"})
    assert out.returncode == 0, out.stderr
    assert "EXIT STATUS" in out.stdout and "hostaudit cpu compare" in out.stdout


# ------------------------------------------------------------------------------------------ start-up


def test_start_up_imports_neither_generator():
    """--version and a run's parser import no completion or man page code (nor shtab)."""
    code = ("import sys\n"
            "from audit.cli.main import build_parser\n"
            "build_parser('run'); build_parser('--version')\n"
            "print(' '.join(m for m in sys.modules if m.split('.')[0] in ('argparse_manpage', 'shtab')"
            " or m == 'audit.cli.completion'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr
    timed = subprocess.run([sys.executable, "-X", "importtime", "-m", "audit", "--version"], capture_output=True,
                           text=True, cwd=REPO, timeout=120)
    assert timed.returncode == 0 and timed.stdout.startswith("hostaudit ")
    imported = {line.split("|")[-1].strip() for line in timed.stderr.splitlines() if "|" in line}
    assert not {m for m in imported if m.startswith(("argparse_manpage", "shtab", "audit.cli.completion"))}


# ----------------------------------------------------------------------------------------- packaging


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.skip(f"cannot build a wheel here (needs setuptools and argparse-manpage from PyPI): "
                    f"{proc.stderr.strip()[-300:]}")
    (whl,) = out.glob("hostaudit-*.whl")
    return whl


def test_wheel_carries_the_man_page_and_completions(wheel):
    with zipfile.ZipFile(wheel) as z:
        data = {n.split(".data/data/", 1)[1]: z.read(n).decode() for n in z.namelist() if ".data/data/" in n}
    assert set(data) == set(DATA_FILES)
    assert data["share/bash-completion/completions/hostaudit"] == completion.bash_script()
    assert data["share/zsh/site-functions/_hostaudit"] == completion.zsh_script()
    assert "COMMAND \\fI\\,'hostaudit completion'" in data["share/man/man1/hostaudit.1"]


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
    proc = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return venv


def clean_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "MANPATH", "XDG_DATA_DIRS")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}/usr/local/bin:/usr/bin:/bin"
    return env


def test_pip_install_puts_them_under_the_prefix(venv):
    for rel in DATA_FILES:
        assert (venv / rel).is_file(), rel
    version = subprocess.run(["hostaudit", "--version"], capture_output=True, text=True, env=clean_env(venv),
                             timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("hostaudit "), version.stderr


def test_man_finds_the_installed_page_through_path(venv):
    """man-db looks in <dir>/../share/man for each <dir> on PATH: an activated venv is enough."""
    man = need("man", "man-db")
    out = subprocess.run([man, "-w", "hostaudit"], capture_output=True, text=True, env=clean_env(venv), timeout=60)
    assert out.stdout.strip() == str(venv / "share/man/man1/hostaudit.1"), out.stderr


def test_bash_completion_loads_the_installed_script(venv):
    """bash-completion loads <prefix>/share/bash-completion/completions/hostaudit on the first TAB for
    a prefix in XDG_DATA_DIRS (/usr/local and /usr by default; ~/.local/share for pip --user)."""
    if not BASH_COMPLETION.exists():
        message = "bash-completion not installed: apt-get install bash-completion (bash .ci/install-test-deps does)"
        pytest.fail(message) if CI else pytest.skip(message)
    code = f'source {BASH_COMPLETION}; XDG_DATA_DIRS="$1" __load_completion hostaudit && complete -p hostaudit'
    out = subprocess.run(["bash", "--norc", "--noprofile", "-c", code, "bash", str(venv / "share")],
                         capture_output=True, text=True, env=clean_env(venv), timeout=60)
    assert out.stdout.strip() == "complete -F _hostaudit hostaudit", out.stderr


def test_zsh_autoloads_the_installed_function(venv):
    need("zsh", "zsh")
    shown = complete_zsh(venv / "share" / "zsh" / "site-functions", "hostaudit cpu ", ["compare", "models"])
    assert "baseline" in shown, shown
