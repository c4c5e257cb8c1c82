"""HTML reporter: one self-contained page, every host value escaped, what to fix first and open, fields
parted by text so the page reads without its style and script, filters that work in a real browser.

The browser tests open the report in headless chromium (Debian's ``/usr/bin/chromium``; install it
with ``apt-get install chromium``, which ``.ci/install-test-deps`` does in CI) with ``--dump-dom``:
the filter state comes from the URL fragment (``#filter=fail``), so the dumped DOM shows which rows
the page's own script hid. Without chromium those tests skip and say how to install it; in CI
(``CI=true``) they fail instead. Set ``HOSTAUDIT_CHROMIUM`` to use another Chromium binary.
tests/test_html_chromium.py looks at the rendered page (as a file, under Jenkins' CSP, without
JavaScript). Golden file: ``tests/golden/report.html`` (``HOSTAUDIT_REGEN_GOLDEN=1`` rewrites it).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import importlib.resources
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from audit.model import Report, Status, replace
from reports import html_report
from reports.sanitize import printable
from tests import _report_fixtures as fx

# -- a small DOM, enough to query what the page shows ---------------------------------------------------------

VOID = {"meta", "link", "br", "img", "input", "hr", "wbr", "source", "area", "base", "col", "embed", "track"}


@dataclasses.dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    children: list[Node | str] = dataclasses.field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def iter(self):
        yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Node]:
        return [
            n for n in self.iter()
            if (tag is None or n.tag == tag) and (cls is None or cls in n.classes)
            and all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def find(self, *args, **kwargs) -> Node:
        found = self.find_all(*args, **kwargs)
        assert found, f"no element {args} {kwargs}"
        return found[0]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def dom(text: str) -> Node:
    b = _Builder()
    b.feed(text)
    b.close()
    return b.root


# -- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return fx.golden_report(tmp_path_factory.mktemp("host"))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return fx.hostile_report(tmp_path_factory.mktemp("hostile"))


def render(report: Report) -> str:
    return html_report.render(report, exit_code=fx.code(report))


# -- the page as written ----------------------------------------------------------------------------------


def test_golden(report):
    fx.assert_golden("report.html", render(report))


def test_self_contained(report):
    text = render(report)
    page = dom(text)
    assert not page.find_all("link") and not page.find_all("img") and not page.find_all("iframe")
    assert all("src" not in n.attrs and "href" not in n.attrs for n in page.iter())
    assert not re.search(r"https?://|@import|url\(|//[a-z0-9.-]+\.[a-z]{2,}/", text, flags=re.I)
    assert len(page.find_all("script")) == 1 and len(page.find_all("style")) == 1


def test_csp_allows_exactly_the_inline_script_and_style(report):
    page = dom(render(report))
    csp = page.find("meta", http_equiv="Content-Security-Policy").attrs["content"]

    def source(node: Node) -> str:
        digest = hashlib.sha256(node.text.encode()).digest()
        return "'sha256-" + base64.b64encode(digest).decode() + "'"

    assert "default-src 'none'" in csp
    assert f"script-src {source(page.find('script'))};" in csp
    assert f"style-src {source(page.find('style'))};" in csp


def test_header_facts_and_summary(report):
    page = dom(render(report))
    facts = {n.attrs["id"]: n.text for n in page.find_all("dd")}
    assert facts["fact-host"] == "kvm01.example.org"
    assert facts["fact-os"] == "Debian GNU/Linux 12 (bookworm) (debian)"
    assert facts["fact-kernel"].startswith(fx.RELEASE)
    assert facts["fact-target"] == f"image at {fx.SHOWN_ROOT}"
    assert facts["fact-profile"] == "kvm-host"
    assert facts["fact-time"].startswith("2024-05-06T07:08:09Z")
    assert facts["fact-tool"] == f"hostaudit {report.tool_version}"
    badges = {n.attrs["data-summary"]: n for n in page.iter() if "data-summary" in n.attrs}
    assert badges["total"].text == f"{len(report.results)} checks"
    for status, count in report.summary().items():
        assert badges[status].find("span", cls="n").text == str(count)
        assert f"s-{status}" in badges[status].classes  # coloured by status


def test_grouped_by_category_problems_first(report):
    page = dom(render(report))
    rank = {s: i for i, s in enumerate(html_report.STATUS_ORDER)}
    sections = page.find_all("section", cls="category")
    assert {s.attrs["data-category"] for s in sections} == {r.check.category for r in report.results}
    worst = []
    for section in sections:
        rows = section.find_all("details", cls="result")
        statuses = [rank[r.attrs["data-status"]] for r in rows]
        assert statuses == sorted(statuses)
        worst.append(statuses[0])
        for row in rows:
            r = next(x for x in report.results if x.id == row.attrs["data-id"])
            assert r.check.category == section.attrs["data-category"]
    assert worst == sorted(worst)
    assert sections[0].find("details").attrs["data-status"] == "fail"


def test_rows_expand_to_evidence_and_commands_with_a_copy_button(report):
    page = dom(render(report))
    rows = {n.attrs["data-id"]: n for n in page.find_all("details", cls="result")}
    assert set(rows) == {r.id for r in report.results}
    for r in report.results:
        row = rows[r.id]
        assert row.find("summary").find("span", cls="msg").text == r.outcome.message
        for ev in r.outcome.evidence:
            assert ev.observed in row.text
        rem = r.outcome.remediation
        if rem and rem.commands:
            cmd = row.find("div", cls="cmd")
            assert cmd.find("pre").text == "\n".join(rem.commands)
            assert not cmd.find_all("button")  # the page's script adds the copy button, where it can work


def test_filter_buttons_and_print_and_narrow_styles(report):
    text = render(report)
    page = dom(text)
    filters = [b.attrs["data-filter"] for b in page.find_all("button") if "data-filter" in b.attrs]
    assert filters == ["all", "problems", *html_report.STATUS_ORDER]
    style = page.find("style").text
    print_css = style[style.index("@media print"):]
    assert ".toolbar,.copy{display:none" in print_css
    assert "details.result[hidden]{display:block" in print_css
    assert "beforeprint" in page.find("script").text  # closed <details> are opened for printing
    assert "@media (max-width:700px)" in style
    assert page.find("meta", name="viewport")


def test_every_host_value_is_escaped(hostile):
    text = render(hostile)
    assert text.count("<script") == 1  # the page's own
    assert "<img" not in text and "<b>bold" not in text and "</pre></details><b>" not in text
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text  # from os-release
    page = dom(text)
    assert page.find("dd", id="fact-host").text.startswith("<script>document.title='pwned-host'</script>\\x1b")
    msg = page.find("details", data_id="hostile.fail").find("span", cls="msg").text
    assert "\\x1b[2J" in msg and "\\u202e" in msg and "\\n" in msg and "\ufffd" in msg
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", text)
    # what to fix shows the same values, as inert
    items = {i.attrs["data-id"]: i for i in fix_items(page)}
    assert next(iter(items)) == "hostile.fail" and {"hostile.warn", "hostile.crash"} <= set(items)
    item = items["hostile.fail"]
    assert item.find("p", cls="msg").text == msg
    evidence = item.find("ul", cls="evidence").find("li").text
    assert "<script>document.title='pwned'</script> </pre></details><b>bold</b>" in evidence
    commands = next(r for r in hostile.results if r.id == "hostile.fail").outcome.remediation.commands
    assert item.find("pre").text.split("\n") == [printable(c) for c in commands]  # a command a line
    assert not item.find_all("b") and not item.find_all("script") and not item.find_all("details")


def test_template_is_package_data_autoescaped_and_strict():
    from jinja2 import FileSystemLoader, ModuleLoader, StrictUndefined, UndefinedError

    assert importlib.resources.files("reports").joinpath("templates/report.html").is_file()
    env = html_report._env()
    assert isinstance(env.loader, ModuleLoader | FileSystemLoader)  # compiled ahead of time, or from source
    assert env.undefined is StrictUndefined
    assert env.autoescape("report.html") is True  # select_autoescape(): by the .html name
    with pytest.raises(UndefinedError):
        env.get_template("report.html").render()


def test_an_empty_report(report):
    page = dom(render(replace(report, results=())))
    assert "No check ran." in page.find("main").text
    assert "Nothing to fix" in page.find("section", id="fix").text


# -- what to fix, and the page without its style and script ------------------------------------------------


def fix_items(page: Node) -> list[Node]:
    return page.find("section", id="fix").find_all("li", cls="fix")


def text_report_todo(report: Report) -> list[str]:
    """The ids the text report lists under "What to fix:", in its order."""
    from reports import text_report

    text = text_report.render(report, exit_code=fx.code(report))
    todo = text.split("What to fix:\n", 1)[1].split("\n\nAll results:", 1)[0]
    return re.findall(r"^\[[A-Z]+\] (\S+) \(", todo, flags=re.M)


def test_what_to_fix_comes_first_in_the_text_reports_order(report):
    text = render(report)
    page = dom(text)
    assert text.index('<section id="fix"') < text.index('<section id="all"') < text.index('class="category"')
    items = fix_items(page)
    assert [i.attrs["data-id"] for i in items] == text_report_todo(report)
    assert [i.attrs["data-status"] for i in items] == ["fail", "fail", "fail", "error", "warn"]
    assert not page.find("section", id="fix").find_all("details")  # open: nothing to click to see a fix
    assert page.find("h2", id="fix-heading").text == f"What to fix ({len(items)})"


def test_each_fix_shows_its_message_evidence_why_and_commands(report):
    from reports.document import evidence_text

    items = {i.attrs["data-id"]: i for i in fix_items(dom(render(report)))}
    for r, j in report.judged():
        if r.id not in items:
            continue
        item = items[r.id]
        assert item.find("h3").text == f"{r.status.value.upper()} · {r.effective_severity} · {r.id} — {r.check.title}"
        assert item.find("p", cls="msg").text == j.headline(r.outcome.message)
        shown = [li.text for ul in item.find_all("ul", cls="evidence") for li in ul.find_all("li")]
        assert shown == [evidence_text(e) for e in r.outcome.evidence]
        assert item.find("p", cls="why").text == f"Why: {r.check.rationale}"
        rem = r.outcome.remediation
        if rem and rem.commands:
            assert item.find("pre").text == "\n".join(rem.commands)
        if rem and rem.notes:
            assert item.find("p", cls="notes").text == f"Fix: {rem.notes}"
        assert bool(item.find_all("p", cls="reboot")) == bool(rem and rem.reboot_required)
        assert not item.find_all("button")


def test_required_but_unchecked_is_in_what_to_fix(report):
    gated = fx.with_gate(report, required=("crypto.aesni",))
    items = fix_items(dom(render(gated)))
    assert [i.attrs["data-id"] for i in items] == text_report_todo(gated)
    (item,) = [i for i in items if i.attrs["data-id"] == "crypto.aesni"]
    assert item.attrs["data-gate"] == "required_unknown" and item.attrs["data-counts"] == "true"
    assert item.find("h3").text.startswith("SKIP · medium · crypto.aesni — ")
    assert item.find("p", cls="msg").text.startswith("required, but could not be checked: the CPU has no aes flag")


def test_nothing_to_fix(report):
    passes = tuple(r for r in report.results if r.status is Status.PASS)
    fix = dom(render(replace(report, results=passes))).find("section", id="fix")
    assert not fix.find_all("li") and "Nothing to fix: no failure, error or warning." in fix.text


def test_image_commands_say_what_root_is(report):
    from audit.model import Remediation

    def rooted(r):
        if r.id != "kvm.device":
            return r
        rem = Remediation(commands=('echo kvm_intel > "$ROOT"/etc/modules-load.d/kvm.conf',), reboot_required=False)
        return replace(r, outcome=replace(r.outcome, remediation=rem))

    page = dom(render(replace(report, results=tuple(rooted(r) for r in report.results))))
    assert page.find("p", id="image-root").text.startswith(
        'Image commands: "$ROOT" is the image root, here ROOT=/srv/images/kvm01; ')
    assert not dom(render(report)).find_all("p", id="image-root")


def test_without_style_fields_are_parted_by_text(report):
    """What a text browser, a mail client or a CI server's sandbox shows: the markup's own text."""
    page = dom(render(report))

    def flat(node: Node) -> str:
        return " ".join(node.text.split())

    assert flat(page.find("h1")) == "kvm01.example.org — hostaudit report"
    assert flat(page.find("p", id="summary")) == "12 checks: 3 fail, 1 error, 1 warn, 1 waived, 1 skip, 5 pass"
    row = page.find("details", data_id="cpu.aes").find("summary")
    assert flat(row) == "FAIL · medium · cpu.aes — CPU has AES instructions (x86 AES-NI, arm64 Crypto Extensions): " \
        "CPU lacks aes"
    assert flat(page.find("section", data_category="cpu").find("h3")) == "cpu (1 fail, 2 pass)"
    (item,) = [i for i in fix_items(page) if i.attrs["data-id"] == "kvm.device"]
    assert flat(item.find("h3")) == "FAIL · critical · kvm.device — /dev/kvm exists and is a character device"


def test_what_only_the_script_can_do_is_hidden_without_it(report):
    page = dom(render(report))
    assert "hidden" in page.find("nav", id="toolbar").attrs  # filters: shown by the script
    assert not page.find_all("button", cls="copy")  # copy buttons: made by the script
    assert 'button.className = "copy"' in page.find("script").text
    assert "toolbar.hidden = false" in page.find("script").text


# -- in a real browser -------------------------------------------------------------------------------------

INSTALL_HINT = ("chromium not found: install Debian's with 'apt-get install chromium' (or run "
                ".ci/install-test-deps), or point HOSTAUDIT_CHROMIUM at a Chromium binary")


def chromium_binary() -> str | None:
    for candidate in (os.environ.get("HOSTAUDIT_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def need_chromium() -> str:
    """The Chromium binary. Without one: skip with the install hint, or fail in CI (``CI=true``), where
    .ci/install-test-deps installs it and a skip would pass a page no browser has opened."""
    binary = chromium_binary()
    if binary is None:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"CI=true: {INSTALL_HINT}")
        pytest.skip(INSTALL_HINT)
    return binary


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = need_chromium()
    cmd = [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
        "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'chromium-profile'}",
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def dump_dom(tmp_path: Path, text: str, fragment: str = "") -> Node:
    page = tmp_path / "report.html"
    page.write_text(text, encoding="utf-8")
    proc = chromium(tmp_path, "--dump-dom", page.as_uri() + fragment)
    assert "<html" in proc.stdout, proc.stderr[-2000:]
    return dom(proc.stdout)


def visible_statuses(page: Node) -> tuple[set[str], set[str]]:
    rows = page.find_all("details", cls="result")
    shown = {r.attrs["data-status"] for r in rows if "hidden" not in r.attrs}
    hidden = {r.attrs["data-status"] for r in rows if "hidden" in r.attrs}
    return shown, hidden


def test_browser_runs_the_script_and_shows_the_summary(report, tmp_path):
    page = dump_dom(tmp_path, render(report))
    assert "js" in page.find("html").classes  # the script ran (so the CSP hash matched)
    summary = {n.attrs["data-summary"]: n for n in page.iter() if "data-summary" in n.attrs}
    for status, count in report.summary().items():
        assert summary[status].find("span", cls="n").text == str(count)
    shown, hidden = visible_statuses(page)
    assert shown == {r.status.value for r in report.results} and not hidden
    n = len(report.results)
    assert page.find("span", id="shown").text == f"{n} of {n} shown"
    assert page.find("button", data_filter="all").attrs["aria-pressed"] == "true"
    assert "hidden" not in page.find("nav", id="toolbar").attrs
    blocks = page.find_all("div", cls="cmd")
    assert blocks and all(b.find("button", cls="copy").text == "Copy" for b in blocks)


@pytest.mark.parametrize(
    ("fragment", "wanted", "pressed"),
    [
        ("#filter=fail", {"fail"}, "fail"),
        ("#filter=problems", {"fail", "error", "warn"}, "problems"),
        ("#filter=skip,waived", {"skip", "waived"}, None),
        ("#filter=nonsense", set(html_report.STATUS_ORDER), "all"),
    ],
)
def test_browser_filter_hides_rows(report, tmp_path, fragment, wanted, pressed):
    page = dump_dom(tmp_path, render(report), fragment)
    present = {r.status.value for r in report.results}
    shown, hidden = visible_statuses(page)
    assert shown == wanted & present
    assert hidden == present - wanted
    assert "pass" not in shown or "pass" in wanted
    for section in page.find_all("section", cls="category"):
        rows = section.find_all("details", cls="result")
        all_hidden = all("hidden" in r.attrs for r in rows)
        assert ("hidden" in section.attrs) == all_hidden
    count = sum(1 for r in report.results if r.status.value in wanted)
    assert page.find("span", id="shown").text == f"{count} of {len(report.results)} shown"
    if pressed:
        assert page.find("button", data_filter=pressed).attrs["aria-pressed"] == "true"


def test_browser_keeps_planted_scripts_as_text(hostile, tmp_path):
    page = dump_dom(tmp_path, render(hostile), "#filter=fail")
    assert len(page.find_all("script")) == 1
    assert not page.find_all("img") and not page.find_all("b")
    title = page.find("title").text  # a planted script that ran would have set it to 'pwned…'
    assert title.startswith("hostaudit: <script>document.title='pwned-host'</script>\\x1b[2J")
    row = page.find("details", data_id="hostile.fail")
    assert "hidden" not in row.attrs
    assert "<script>document.title='pwned'</script>" in row.find("span", cls="msg").text
    shown, _ = visible_statuses(page)
    assert shown == {Status.FAIL.value}


def test_browser_screenshots_desktop_and_narrow(report, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(render(report), encoding="utf-8")
    for name, size in (("desktop.png", "1280,1600"), ("narrow.png", "400,1600")):
        chromium(tmp_path, f"--window-size={size}", f"--screenshot={tmp_path / name}", page.as_uri())
        png = (tmp_path / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000
