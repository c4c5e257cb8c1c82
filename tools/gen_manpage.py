"""The man page hostaudit(1), made from the command-line parser by argparse-manpage, and the files a
wheel installs under <prefix>/share: the man page and the bash and zsh completions.

tools/build_backend.py runs this when a wheel is built (``--data build/hostaudit-data``), so the page
cannot go stale. By hand: ``python tools/gen_manpage.py > hostaudit.1; man -l hostaudit.1``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: Where each generated file goes, relative to the install prefix (pyproject.toml
#: [tool.setuptools.data-files] lists the same paths under build/hostaudit-data).
MANPAGE = "share/man/man1/hostaudit.1"
BASH_COMPLETION = "share/bash-completion/completions/hostaudit"
ZSH_COMPLETION = "share/zsh/site-functions/_hostaudit"

#: The default command's epilog blocks become these sections of the page (man-pages(7) names).
SECTION_NAMES = {"exit codes": "EXIT STATUS", "examples": "EXAMPLES"}


def roff_lines(text: str) -> list[str]:
    """Literal text as roff input lines: backslashes and minus signs escaped (a command copied from the
    page must have ASCII hyphens), and no line read as a request."""
    out = []
    for line in text.splitlines():
        line = line.replace("\\", "\\e").replace("-", "\\-")
        out.append("\\&" + line if line.startswith((".", "'")) else line)
    return out


def epilog_blocks(epilog: str) -> list[tuple[str, str]]:
    """``heading:`` lines and the indented text under each, as in run's epilog."""
    blocks: list[tuple[str, list[str]]] = []
    for line in epilog.splitlines():
        heading = re.fullmatch(r"(\S[^:]*):\s*", line)
        if heading:
            blocks.append((heading.group(1), []))
        elif blocks:
            blocks[-1][1].append(line)
        elif line.strip():
            blocks.append(("", [line]))
    return [(h, textwrap.dedent("\n".join(lines)).strip("\n")) for h, lines in blocks]


def section_roff(heading: str, body: str) -> str:
    """A table of ``N  text`` items (the exit codes) as tagged paragraphs; anything else verbatim."""
    items: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        if not line.strip():
            continue
        item = re.fullmatch(r"(\d+)\s{2,}(.*)", line)
        if item:
            items.append((item.group(1), [item.group(2)]))
        elif items and line.startswith(" "):
            items[-1][1].append(line.strip())
        else:
            items = []
            break
    if heading == "exit codes" and items:
        out = []
        for code, text in items:
            out += [".TP", f".B {code}", *roff_lines(" ".join(text))]
        return "\n".join(out)
    return "\n".join([".nf", *roff_lines(body), ".fi"])


#: The requests argparse-manpage writes (and .nf/.fi around verbatim text): any other line that starts
#: with a dot or a quote is text that its wrapping put there (".html, .sh remediation script").
REQUESTS = frozenset({".TH", ".nh", ".ad", ".SH", ".SS", ".TP", ".B", ".I", ".RS", ".RE", ".UR", ".UE", ".PP", ".br",
                      ".nf", ".fi"})


def _unbreak_hyphens(lines: list[str]) -> list[str]:
    """argparse wraps help text at hyphens inside words ("libguestfs\\-" / "tools)"), which the page
    would show as two words: such a line is joined with the text line after it."""
    out: list[str] = []
    for line in lines:
        if out and re.search(r"\w\\?-$", out[-1]) and not out[-1].startswith(".") and line and not line.startswith("."):
            out[-1] += line
        else:
            out.append(line)
    return out


def _protect(roff: str) -> str:
    """What argparse-manpage leaves unescaped: a text line's leading dot or quote, which roff reads as a
    request and drops with its line, and the synopsis's hyphens (a '-' is a typographic hyphen: an
    option copied from the page must be '\\-')."""
    lines = _unbreak_hyphens(roff.split("\n"))
    for i, line in enumerate(lines):
        if line.startswith("'") or (line.startswith(".") and line.split(" ", 1)[0] not in REQUESTS):
            line = "\\&" + line
        if not line.startswith("."):
            line = re.sub(r"(?<!\\)-", r"\\-", line)
        lines[i] = line
    return "\n".join(lines)


def _verbatim(parser: argparse.ArgumentParser) -> None:
    """A description its author laid out (RawDescriptionHelpFormatter) stays laid out: argparse-manpage
    passes the text through with hyphens and backslashes escaped, so no-fill lines around it work."""
    if parser.description and issubclass(parser.formatter_class, argparse.RawDescriptionHelpFormatter):
        parser.description = f".nf\n{parser.description.strip(chr(10))}\n.fi"


def _commands_group(parser: argparse.ArgumentParser) -> None:
    """Sub-commands listed under COMMANDS, not POSITIONAL ARGUMENTS (the page's copy of the parser)."""
    for group in list(parser._action_groups):
        for action in list(group._group_actions):
            if isinstance(action, argparse._SubParsersAction) and group.title == "positional arguments":
                group._group_actions.remove(action)
                parser.add_argument_group("commands")._group_actions.append(action)


@contextlib.contextmanager
def _columns(width: int) -> Iterator[None]:
    """argparse wraps help at the terminal's width: the same page from every build."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def _subparsers(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((name, sub))
                found += [(f"{name} {n}", s) for n, s in _subparsers(sub)]
    return found


def manpage(parser: argparse.ArgumentParser | None = None) -> str:
    """The roff source of hostaudit(1), from ``parser`` (changed on the way: give a fresh one) or the full one."""
    from argparse_manpage.manpage import Manpage

    from audit import __version__
    from audit.cli.main import build_parser

    parser = parser or build_parser()  # every sub-command
    sections: list[tuple[str, str]] = []
    for name, sub in _subparsers(parser):
        epilog, sub.epilog = sub.epilog, None  # argparse-manpage leaves sub-command epilogs out
        if epilog and name == "run":  # the default command's: sections of the page
            for heading, body in epilog_blocks(epilog):
                sections.append((SECTION_NAMES.get(heading, heading.upper() or "NOTES"), section_roff(heading, body)))
        elif epilog:
            sub.description = f"{sub.description or ''}\n\n{epilog}".strip()
        _verbatim(sub)
        _commands_group(sub)
    _commands_group(parser)
    parser.description = (f"{parser.description}\n\nWithout a command, hostaudit runs 'run', the default command: "
                          "'hostaudit --root DIR' is 'hostaudit run --root DIR'. "
                          "'hostaudit COMMAND --help' shows the options of a command.")
    with _columns(80):
        page = Manpage(parser)
        page.description = _summary()
        page.source = f"hostaudit {__version__}"
        page.manual = "User Commands"
        page.add_section("synopsis", "=", _synopsis(parser))
        for heading, content in sections:
            page.add_section(heading, ">", content)
        roff = _protect(str(page))
    # option names and paths are not words to hyphenate or stretch
    head, _, rest = roff.partition("\n")
    return f"{head}\n.nh\n.ad l\n{rest}"


def _synopsis(parser: argparse.ArgumentParser) -> str:
    """The three ways to call it: the default command's options alone, a command, --version."""
    names = ",".join(name for name, _ in _subparsers(parser) if " " not in name)
    return "\n".join([".B hostaudit", "[\\fIrun options\\fR]", ".br",
                      ".B hostaudit", f"{{{names}}} [\\fIoptions\\fR] [\\fIarguments\\fR]", ".br",
                      ".B hostaudit", "\\-\\-version"])


def _summary() -> str:
    """The NAME line's text: the project's one-line description."""
    with open(REPO / "pyproject.toml", "rb") as f:
        text = str(tomllib.load(f)["project"]["description"])
    return text[:1].lower() + text[1:]


def write_data(root: Path) -> list[Path]:
    """The man page and both completions under ``root`` (root/share/...), each written atomically."""
    from audit.cli.completion import bash_script, zsh_script

    written = []
    for rel, text in ((MANPAGE, manpage()), (BASH_COMPLETION, bash_script()), (ZSH_COMPLETION, zsh_script())):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", metavar="DIR", type=Path,
                    help=f"write {MANPAGE}, {BASH_COMPLETION} and {ZSH_COMPLETION} under DIR")
    args = ap.parse_args(argv)
    if args.data:
        for path in write_data(args.data):
            print(f"gen_manpage: wrote {path}", file=sys.stderr)
    else:
        sys.stdout.write(manpage())
    return 0


if __name__ == "__main__":
    sys.exit(main())
