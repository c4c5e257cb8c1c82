"""A host's data never becomes markup, syntax or a command in any artefact (issue #11, item 11).

First every function of ``reports.sanitize`` (one per output context) takes a table of hostile strings
and its output goes through the real parser of its format (xml.etree, html.parser, json, bash,
prometheus_client): it parses, nothing was injected, and the hostile text is still there to see. Then a
fake host root whose grub.cfg kernel line, hostname, os-release, cpuinfo model name and grub.d file
names carry those strings is audited to every format (``-o .json .txt .xml .html .sh .prom``), each
output is parsed, and the fix script is run confined (bubblewrap) to show that nothing in it ran.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from reports.sanitize import (
    cdata_section,
    display_text,
    display_tree,
    html_text,
    no_surrogates,
    printable,
    prom_label_value,
    sanitize_tree,
    shell_comment,
    shell_hint,
    shell_word,
    uri_path,
    xml_comment_text,
    xml_markup,
    xml_text,
)
from tests import trees
from tests.conftest import Dir, build_tree, cpuinfo_sample

REPO = Path(__file__).resolve().parents[1]

#: one of each, and all of them again and again up to 100 KB
_EACH = ("--><x/><!-- ]]> </script><script>alert(1)</script> '; rm -rf / # $(reboot) `reboot` "
         "x\n# TYPE x counter\n\x1b[2J\u202e\udcff\x00\ufffe")
BIG = (_EACH * (100_000 // len(_EACH) + 1))[:100_000]
HOSTILE = [
    pytest.param("--><x/><!--", id="xml-comment-end"),
    pytest.param("]]>", id="cdata-end"),
    pytest.param("</script><script>alert(1)</script>", id="script"),
    pytest.param("'; rm -rf / #", id="shell-quote"),
    pytest.param("$(reboot)", id="substitution"),
    pytest.param("`reboot`", id="backticks"),
    pytest.param("x\n# TYPE x counter\nx 1", id="newline-metric"),
    pytest.param("\x1b[2J", id="ansi"),
    pytest.param("\u202eevil", id="bidi-override"),
    pytest.param("caf\udce9 \udcff", id="lone-surrogates"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("\ufffe\uffff", id="noncharacters"),
    pytest.param(BIG, id="100KB"),
]
#: what a person must be able to see of each, once control characters are shown as escapes
SEEN = {
    "--><x/><!--": "--><x/><!--", "]]>": "]]>", "</script><script>alert(1)</script>": "<script>alert(1)</script>",
    "'; rm -rf / #": "'; rm -rf / #", "$(reboot)": "$(reboot)", "`reboot`": "`reboot`",
    "x\n# TYPE x counter\nx 1": "x\\n# TYPE x counter\\nx 1", "\x1b[2J": "\\x1b[2J", "\u202eevil": "\\u202eevil",
    "caf\udce9 \udcff": "caf\\xe9 \\xff", "a\x00b": "a\\x00b", "\ufffe\uffff": "\ufffe\uffff",
    BIG: "$(reboot) `reboot` x\\n# TYPE x counter\\n\\x1b[2J\\u202e\\xff\\x00\ufffe--><x/><!--",
}
#: what no output may carry raw: C0/C1 controls (but newline and tab), bidi controls, lone surrogates
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
                         "\ud800-\udfff]")


def seen(value: str, *, nonchars_shown: bool = False) -> str:
    out = SEEN[value]
    return out.replace("\ufffe", "\\ufffe").replace("\uffff", "\\uffff") if nonchars_shown else out


# -- terminal, JSON, SARIF-like ------------------------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE)
def test_printable_is_one_visible_line(value):
    out = printable(value)
    assert "\n" not in out and not RAW_CONTROL.search(out)
    assert seen(value) in out
    out.encode("utf-8")
    kept = printable(value, keep_newlines=True)
    assert not RAW_CONTROL.search(kept) and kept.count("\n") == value.count("\n")


@pytest.mark.parametrize("value", HOSTILE)
def test_json_keeps_the_data_and_is_strict_utf8(value):
    text = json.dumps(sanitize_tree({value: [value]}), ensure_ascii=False)
    doc = json.loads(text.encode("utf-8").decode("utf-8"))  # strict UTF-8 both ways
    assert doc == {no_surrogates(value): [no_surrogates(value)]}
    if "\udcff" not in value and "\udce9" not in value:
        assert doc[value] == [value]  # the host's text exactly: JSON escapes it, nothing is changed


@pytest.mark.parametrize("value", HOSTILE)
def test_display_text_for_sarif_and_code_quality(value):
    doc = json.loads(json.dumps(display_tree({"message": {"text": value}, value: 1}), ensure_ascii=False))
    shown = doc["message"]["text"]
    assert shown == display_text(value) and seen(value) in shown
    assert not RAW_CONTROL.search(json.dumps(doc, ensure_ascii=False)) and "\n" not in shown
    assert display_text(value) in doc


def test_uri_path_has_no_delimiters():
    got = uri_path("/etc/grub.d/a b#?%:\udcff\x1b\u202e.cfg")
    assert got == "/etc/grub.d/a%20b%23%3F%25%3A%FF%1B%E2%80%AE.cfg"
    assert re.fullmatch(r"[A-Za-z0-9/._~%-]*", uri_path(BIG.replace("\x00", "")))


# -- XML ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE)
def test_xml_text_through_an_xml_writer(value):
    elem = ET.Element("r", {"a": xml_text(value)})
    elem.text = xml_text(value)
    back = ET.fromstring(ET.tostring(elem, encoding="unicode").encode("utf-8"))
    assert len(back) == 0 and back.get("a") == back.text == xml_text(value)
    assert seen(value, nonchars_shown=True) in back.text


@pytest.mark.parametrize("value", HOSTILE)
def test_xml_markup_spliced_by_hand(value):
    m = xml_markup(value)
    back = ET.fromstring(f"<r a=\"{m}\" b='{m}'>{m}</r>".encode())
    assert len(back) == 0 and back.get("a") == back.get("b") == back.text == xml_text(value)
    assert seen(value, nonchars_shown=True) in back.text


@pytest.mark.parametrize("value", HOSTILE)
def test_xml_comment_cannot_be_closed_from_inside(value):
    c = xml_comment_text(value)
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    back = ET.fromstring(f"<r><!--{c}--><y/></r>".encode(), parser=parser)
    assert [child.tag for child in back] == [ET.Comment, "y"]
    assert back[0].text == c and "--" not in c and not c.endswith("-")
    assert not RAW_CONTROL.search(c)


@pytest.mark.parametrize("value", HOSTILE)
def test_cdata_section_cannot_be_closed_from_inside(value):
    section = cdata_section(value)
    back = ET.fromstring(f"<r>{section}<y/></r>".encode())
    assert [child.tag for child in back] == ["y"]
    assert back.text == xml_text(value, multiline=True)  # markup included, as text
    if "]]>" in value:
        assert "]]>" in back.text


# -- HTML ---------------------------------------------------------------------------------------------


class Page(HTMLParser):
    """Every start tag, attribute value and piece of text an HTML parser finds."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [v or "" for _, v in attrs]

    def handle_data(self, data):
        self.text.append(data)


def page(text: str) -> Page:
    p = Page()
    p.feed(text)
    p.close()
    return p


@pytest.mark.parametrize("value", HOSTILE)
def test_html_text_in_text_and_attributes(value):
    h = html_text(value)
    p = page(f'<p title="{h}" data-x=\'{h}\'>{h}</p><script>var own = 1;</script>')
    assert p.tags == ["p", "script"]  # nothing a host wrote became an element
    visible = printable(value).replace("\ufffe", "\\ufffe").replace("\uffff", "\\uffff")
    assert p.attrs == [visible, visible] and p.text == [visible, "var own = 1;"]
    assert seen(value, nonchars_shown=True) in visible and not RAW_CONTROL.search(h)


def test_html_filter_is_what_autoescape_writes():
    from markupsafe import escape

    from reports.html_report import show

    text = "<b title=\"x\">'&'</b>"
    assert str(show(text)) == str(escape(text)) == html_text(text)
    assert show(None) == "" and str(show(text)) == str(escape(show(text)))  # marked safe: never escaped twice


# -- shell --------------------------------------------------------------------------------------------

#: The commands the hostile strings name: in bash's PATH first, each leaves a mark if it ever runs.
CANARIES = ("reboot", "rm", "alert", "x", "evil")


def run_bash(script: str, work: Path) -> subprocess.CompletedProcess:
    """``script`` checked with ``bash -n``, then run confined: bubblewrap, the machine read-only, no
    network, no capabilities, only ``work`` writable, the canaries first on PATH."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / "s.sh"
    path.write_bytes(script.encode("utf-8"))
    checked = subprocess.run(["bash", "-n", str(path)], capture_output=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stderr
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap): scripts are only run confined")
    bin_dir = work / "canaries"
    bin_dir.mkdir(exist_ok=True)
    for name in CANARIES:
        canary = bin_dir / name
        canary.write_text(f'#!/bin/sh\necho "{name} $*" >> {work}/EXECUTED\n')
        canary.chmod(0o755)
    argv = ["bwrap", "--die-with-parent", "--unshare-pid", "--unshare-net", "--ro-bind", "/", "/", "--dev", "/dev",
            "--proc", "/proc", "--tmpfs", "/tmp", "--bind", str(work), str(work), "--chdir", str(work),
            "--cap-drop", "ALL", "bash", str(path)]
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(work)}
    done = subprocess.run(argv, capture_output=True, timeout=60, env=env, check=False)
    assert not (work / "EXECUTED").exists(), (work / "EXECUTED").read_text()
    return done


@pytest.mark.parametrize("value", HOSTILE)
def test_shell_word_is_one_word_with_the_exact_bytes(value, tmp_path):
    if "\x00" in value:
        with pytest.raises(ValueError, match="NUL"):
            shell_word(value)
        assert shell_hint(value) == printable(value)  # shown in a message, never refused there
        return
    w = shell_word(value)
    assert "\n" not in w and printable(w) == w  # one printable line, whatever the value
    done = run_bash(f"printf '%s' {w} > out\nprintf '%s\\n' {w} | wc -l > lines\nset -- {w}\necho $# > words\n",
                    tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out").read_bytes() == value.encode("utf-8", "surrogateescape")
    assert (tmp_path / "words").read_text().strip() == "1"


def test_shell_word_is_shlex_quote_for_printable_text():
    import shlex

    for text in ("/boot/grub/grub.cfg", "a b", "it's", "$(reboot)", "", "[1/3] cpu.aes"):
        assert shell_word(text) == shlex.quote(text)


@pytest.mark.parametrize("value", HOSTILE)
def test_shell_comment_cannot_be_broken_out_of(value, tmp_path):
    c = shell_comment(value)
    assert c.startswith("#") and "\n" not in c and "\r" not in c and not RAW_CONTROL.search(c)
    assert seen(value) in c or seen(value) == "\ufffe\uffff"
    done = run_bash(f"set -euo pipefail\n{c}\necho SAFE\n", tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"SAFE\n", b"")


# -- Prometheus ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE)
def test_prometheus_label_value_stays_in_its_label(value):
    from prometheus_client.parser import text_string_to_metric_families

    from reports.prometheus import label_value

    assert label_value(value) == prom_label_value(value)
    text = (f'# HELP hostaudit_x x\n# TYPE hostaudit_x gauge\nhostaudit_x{{v="{prom_label_value(value)}",'
            f'w="ok"}} 1\n')
    families = list(text_string_to_metric_families(text))
    assert [f.name for f in families] == ["hostaudit_x"] and [f.type for f in families] == ["gauge"]
    (sample,) = families[0].samples
    assert sample.labels == {"v": printable(value), "w": "ok"} and sample.value == 1
    assert text.count("\n") == 3


# -- a hostile host, every format -------------------------------------------------------------------

#: If a host value ever ran as a command in the fix script, bash would say "command not found".
CANARY = "hostaudit-pwned"
#: one value with every trick, for the places of a host that hold one line of text
PAYLOAD = (f"--><x/><!-- ]]> <![CDATA[ </script><script>alert(1)</script> <img src=x onerror=alert(1)> "
           f"'; {CANARY}-q # $({CANARY}-s) `{CANARY}-b` ${{IFS}} \x1b[2J\u202e\x00\ufffe&amp;")
#: file names (no '/' in a name): shell syntax alone, whose command the fix script runs (quoted); and
#: control characters and bytes that are not UTF-8, whose command it only shows
FILE_NAMES = {
    "shell": f"x'; {CANARY}-q #$({CANARY}-s)`{CANARY}-b` ]]> --><x><!-- <script>.cfg",
    "bytes": "y\udcff\x1b[2J\u202e\n# TYPE x counter.cfg",
}


def hostile_tree(file_name: str) -> dict[str, object]:
    tree = trees.debian12_tree(asked="mitigations=auto")  # which the generated grub.cfg lacks: drift
    grub_cfg = tree["boot/grub/grub.cfg"]
    assert isinstance(grub_cfg, str) and "ro  quiet" in grub_cfg
    # a kernel line whose quoted word holds the payload (GRUB's quoting: no "'" inside '...')
    tree["boot/grub/grub.cfg"] = grub_cfg.replace("ro  quiet", f"ro 'evil={PAYLOAD.replace(chr(39), '')}' "
                                                               "intel_iommu=off quiet")
    tree[f"etc/default/grub.d/{file_name}"] = 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX intel_iommu=off"\n'
    tree["etc/hostname"] = PAYLOAD.encode("utf-8") + b"\xff\n"
    # 100 KB of it: os-release's PRETTY_NAME is the OS in every report's header
    pretty = (PAYLOAD.replace(chr(34), "") * (100_000 // len(PAYLOAD) + 1))[:100_000]
    tree["etc/os-release"] = f'PRETTY_NAME="{pretty}"\nID=debian\n'
    cpuinfo = cpuinfo_sample("intel-xeon-e5-2690v4-broadwell-ep.txt").read_text()
    # without AES-NI, so that cpu.aes fails and shows the model name in its evidence
    tree["proc/cpuinfo"] = cpuinfo.replace("model name\t: ", f"model name\t: {PAYLOAD} ").replace(" aes ", " ")
    tree["proc/sys/kernel/osrelease"] = trees.DEBIAN_RELEASE + "\n"
    tree["proc/cmdline"] = f"BOOT_IMAGE=/boot/vmlinuz-{trees.DEBIAN_RELEASE} ro quiet\n"
    tree["sys/kernel/iommu_groups"] = Dir()  # an IOMMU the kernel was not told to use: a failure with a fix
    tree["sys/firmware/acpi/tables/DMAR"] = "DMAR"
    tree["sys/kernel/mm/ksm/run"] = "0\n"
    return tree


OUTPUTS = ("json", "txt", "xml", "html", "sh", "prom")


@pytest.fixture(scope="module", params=sorted(FILE_NAMES))
def audited(request, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """(the host root, {suffix: text}) of one audit of the hostile host written to every format;
    ``texts["variant"]`` names the grub.d file name it has (a key of FILE_NAMES)."""
    base = tmp_path_factory.mktemp(f"hostile-{request.param}")
    root = build_tree(base / "root", hostile_tree(FILE_NAMES[request.param]))  # type: ignore[arg-type]
    outs = {s: base / f"report.{s}" for s in OUTPUTS}
    argv = [sys.executable, "-m", "audit", "--root", str(root), "--no-entry-points", "--format", "text"]
    run = subprocess.run([*argv, *(a for p in outs.values() for a in ("-o", str(p)))], capture_output=True,
                         timeout=300, cwd=REPO, check=False)
    assert run.returncode == 1, run.stderr.decode("utf-8", "replace")[-3000:]
    texts = {s: p.read_bytes().decode("utf-8") for s, p in outs.items()}  # every report is strict UTF-8
    texts["stdout"] = run.stdout.decode("utf-8")
    texts["variant"] = request.param
    return root, texts


def test_the_payload_reaches_every_format(audited):
    _, texts = audited
    for suffix in ("json", "txt", "xml", "html", "sh", "stdout"):
        assert f"$({CANARY}-s)" in texts[suffix], suffix  # shown, so a reader sees what the host had
    assert "<img src=x" in json.loads(texts["json"])["target"]["hostname"]
    for suffix in ("json", "txt", "xml", "html"):  # the grub.cfg kernel line, in the drift warning's evidence
        assert "'evil=--><x/><!--" in texts[suffix].replace("&#39;", "'").replace("&lt;", "<").replace(
            "&gt;", ">"), suffix


def test_text_has_no_control_characters(audited):
    _, texts = audited
    for suffix in ("txt", "stdout"):
        assert not RAW_CONTROL.search(texts[suffix]), suffix
        assert "\\x1b[2J\\u202e\\x00" in texts[suffix], suffix
        if texts["variant"] == "bytes":
            assert "y\\xff\\x1b[2J\\u202e\\n# TYPE x counter.cfg" in texts[suffix]  # the file name, as bytes


def test_json_parses_and_holds_the_host_text(audited):
    _, texts = audited
    doc = json.loads(texts["json"])
    target = doc["target"]
    # /etc/hostname is decoded with replacement: its \xff byte is U+FFFD
    assert target["hostname"].startswith("--><x/><!--") and target["hostname"].endswith("&amp;\ufffd")
    assert "\x1b[2J\u202e\x00\ufffe" in target["os"]  # JSON keeps the data; its writer escapes what needs it
    assert len(target["os"]) == 100_000 and "\x00\ufffe" in target["hostname"]
    assert '"\x1b' not in texts["json"] and "\\u001b[2J" in texts["json"]


def test_junit_parses_with_nothing_injected(audited):
    from junitparser import JUnitXml

    _, texts = audited
    text = texts["xml"]
    suites = JUnitXml.fromstring(text)
    assert sum(1 for suite in suites for _ in suite) > 0
    tags = {e.tag for e in ET.fromstring(text.encode()).iter()}
    assert tags <= {"testsuites", "testsuite", "properties", "property", "testcase", "failure", "error", "skipped",
                    "system-out"}
    assert "<x/>" not in text and "<script>" not in text and "<img" not in text
    assert not RAW_CONTROL.search(text) and "\ufffe" not in text
    props = {p.get("name"): p.get("value") for p in ET.fromstring(text.encode()).iter("property")}
    assert props["hostname"].startswith("--><x/><!-- ]]>") and "\\x1b[2J\\u202e\\x00\\ufffe" in props["hostname"]


def test_html_parses_with_nothing_injected(audited):
    _, texts = audited
    text = texts["html"]
    p = page(text)
    assert p.tags.count("script") == 1 and "img" not in p.tags and "x" not in p.tags
    assert "<x/>" not in text and "<script>alert" not in text and "<img" not in text
    assert not RAW_CONTROL.search(text) and "\ufffe" not in text
    hostname = "".join(p.text).split("Host", 1)[1]
    assert any(t.startswith("--><x/><!-- ]]>") for t in p.text)  # the hostname, shown as text
    assert "\\x1b[2J\\u202e\\x00\\ufffe" in hostname


def test_prometheus_parses_with_only_our_series(audited):
    from prometheus_client.parser import text_string_to_metric_families

    _, texts = audited
    text = texts["prom"]
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(families) == {f"hostaudit_{n}" for n in ("check_status", "check_gate", "checks",
                                                        "last_run_timestamp_seconds", "run_duration_seconds",
                                                        "exit_code", "build_info")}
    for line in text.splitlines():
        assert line.startswith(("# HELP hostaudit_", "# TYPE hostaudit_", "hostaudit_")), line
    (info,) = families["hostaudit_build_info"].samples
    assert info.labels["os"].startswith("--><x/><!--") and "\\x1b[2J" in info.labels["os"]
    assert not RAW_CONTROL.search(text)
    if shutil.which("promtool"):
        proc = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                              timeout=60, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_fix_script_parses_and_runs_nothing_from_the_host(audited, tmp_path):
    from tests import sandbox

    root, texts = audited
    text = texts["sh"]
    path = tmp_path / "fix.sh"
    path.write_text(text, encoding="utf-8")
    checked = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stderr
    if shutil.which("shellcheck"):
        linted = subprocess.run(["shellcheck", "-s", "bash", str(path)], capture_output=True, text=True, timeout=120,
                                check=False)
        assert linted.returncode == 0, linted.stdout
    assert not RAW_CONTROL.search(text)
    code = [line for line in text.splitlines() if not line.startswith("#")]
    named = [line for line in code if CANARY in line or "grub.d/y" in line]
    if texts["variant"] == "shell":
        # the one code line naming a host value: the fix's sed over the grub.d file, its name one quoted word
        (line,) = named
        quoted = shell_word("/etc/default/grub.d/" + FILE_NAMES["shell"])
        assert line.startswith("sed -i -E ") and line.endswith(" " + quoted)
    else:
        # a name with control characters: the command is only shown, in a comment, its bytes made visible
        assert named == []
        assert "# NOT RUN, it contains control characters; review it and run it by hand if right: sed -i -E " in text
        assert "grub.d/y\\xff\\x1b[2J\\u202e\\n# TYPE x counter.cfg'" in text
    if os.geteuid() != 0 or shutil.which("bwrap") is None:
        pytest.skip("the fix script runs only confined: needs bubblewrap and root (tests/sandbox.py)")
    work = shutil.copytree(root, tmp_path / "root", symlinks=True)
    done = sandbox.run_live_script(work, path, tmp_path / "work")
    assert CANARY not in done.stdout + done.stderr  # no "hostaudit-pwned-s: command not found"
    assert done.returncode == 0, done.stderr[-3000:]
    snippet = work / "etc/default/grub.d" / FILE_NAMES[texts["variant"]]
    if texts["variant"] == "shell":  # the quoted name reached the file of that very name, and sed changed it
        assert "intel_iommu" not in snippet.read_text()
    else:
        assert "intel_iommu=off" in snippet.read_text()  # shown, not run
    assert (work / "etc/default/grub.d/90-hostaudit-iommu.cfg").exists()  # the script did run to its end


# -- the command line: the catalogue and drift --------------------------------------------------------

#: a plugin whose declarations carry the hostile text (its id must match the id pattern, so it does not)
PLUGIN = f'''
import dataclasses

from audit import hookimpl
from audit.model import replace, Severity, check, passed

TEXT = {PAYLOAD + chr(0xDCFF) + chr(0)!r}


@check("hostile.decl", title="title " + TEXT, severity=Severity.LOW, category="hostile", reads=["/etc/" + TEXT],
       example_fix=["echo " + TEXT])
def decl(host, policy):
    return passed("fine")


decl = replace(decl, rationale=TEXT)  # a docstring cannot hold a NUL


@hookimpl
def hostaudit_checks():
    return [decl]
'''


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    site = tmp_path / "site"
    if not site.exists():
        site.mkdir()
        (site / "hostaudit_hostile.py").write_text(PLUGIN, encoding="utf-8")
        info = site / "hostaudit_hostile-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hostaudit-hostile\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text("[hostaudit]\nhostile = hostaudit_hostile\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    return subprocess.run([sys.executable, "-m", "audit", *args], capture_output=True, env=env, timeout=120,
                          check=False)


def test_catalogue_shows_what_plugins_declare_printably(tmp_path):
    listed = _cli(tmp_path, "checks")
    assert listed.returncode == 0, listed.stderr
    text = listed.stdout.decode("utf-8")
    assert "title " + printable(PAYLOAD + "\udcff\x00") in text and not RAW_CONTROL.search(text)
    as_json = _cli(tmp_path, "checks", "--format", "json")
    (entry,) = [e for e in json.loads(as_json.stdout.decode("utf-8")) if e["id"] == "hostile.decl"]
    assert entry["title"] == "title " + PAYLOAD + "\\xff\x00"  # the data, with the byte shown
    explained = _cli(tmp_path, "explain", "hostile.decl")
    assert explained.returncode == 0, explained.stderr
    text = explained.stdout.decode("utf-8")
    assert not RAW_CONTROL.search(text)
    for line in ("why: --><x/><!--", "  /etc/--><x/><!--", "  $ echo --><x/><!--"):
        assert line in text


def test_diff_shows_host_text_printably_and_writes_strict_json(tmp_path):
    def report(status: str, hostname: str) -> Path:
        path = tmp_path / f"{status}.json"
        doc = {"schema_version": 1, "started_at": "2024-05-06T07:08:09Z",
               "target": {"hostname": hostname, "root": "/", "mode": "live"},
               "results": [{"id": "hostile.x", "status": status, "message": PAYLOAD + "\udcff"}]}
        path.write_text(json.dumps(doc), encoding="utf-8")  # ensure_ascii: the surrogate as \udcff
        return path

    old, new = report("pass", "a"), report("fail", PAYLOAD + "\udcff")
    text_run = _cli(tmp_path, "diff", str(old), str(new))
    assert text_run.returncode == 1, text_run.stderr
    text = text_run.stdout.decode("utf-8")
    assert not RAW_CONTROL.search(text) and printable(PAYLOAD + "\udcff") in text
    json_run = _cli(tmp_path, "diff", "--format", "json", str(old), str(new))
    assert json_run.returncode == 1, json_run.stderr
    doc = json.loads(json_run.stdout.decode("utf-8"))  # strict UTF-8: no lone surrogate written
    assert doc["changes"][0]["message"] == PAYLOAD + "\\xff"
    assert doc["new"]["target"]["hostname"] == PAYLOAD + "\\xff"
