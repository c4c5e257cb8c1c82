"""The HTML report as people see it, in headless Chromium, three ways: opened as a file (style and
script run), served over HTTP with Jenkins' default CSP header (neither runs: the page as a CI
server's archive shows it), and with JavaScript disabled (style only, as many mail clients).

Assertions are on the rendered page, never on pixels: layout boxes and computed styles from
``DOMSnapshot.captureSnapshot``, visible text from ``innerText`` (DevTools' own evaluation, which
runs even where the page's scripts may not). Chromium is driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: JSON messages ending in NUL on its file descriptors 3 and 4), so no
port, no websocket library and no browser download. Every wait is bounded; the browser is killed in
a finally.

Screenshots (the first screen at 1400x900 and the whole page, per mode) are kept for people under
``$HOSTAUDIT_ARTEFACTS/html-report/`` (default: pytest's temporary folder); the test output names
the folder. Chromium as in tests/test_reports_html.py: ``/usr/bin/chromium`` or
``HOSTAUDIT_CHROMIUM``; without it these tests skip, and fail in CI (``CI=true``).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import http.server
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reports import html_report
from reports.sanitize import printable
from tests import _report_fixtures as fx
from tests.test_reports_html import need_chromium, text_report_todo

#: what Jenkins sends with archived files unless an administrator relaxes it
JENKINS_CSP = "sandbox allow-same-origin; default-src 'none'; img-src 'self'; style-src 'self';"
WIDTH, HEIGHT = 1400, 900
#: the first screen: the first fix command must be on it
FIRST_SCREEN = 900
#: any one DevTools command, page load or browser start-up
TIMEOUT = 60.0
MODES = ("file", "jenkins-csp", "no-js")
ARTEFACTS_ENV = "HOSTAUDIT_ARTEFACTS"

# -- the DevTools protocol on a pipe ---------------------------------------------------------------------

#: run in the child between fork and Chromium: the pipe ends become its fds 3 (commands in) and 4
#: (replies out), where --remote-debugging-pipe expects them (subprocess cannot place fds itself)
_PLACE_FDS = "import os,sys;os.dup2(int(sys.argv[1]),3);os.dup2(int(sys.argv[2]),4);os.execv(sys.argv[3],sys.argv[3:])"


def _high(fd: int) -> int:
    """``fd`` moved to 10 or above (close-on-exec), so placing the pipes on 3 and 4 cannot clobber them."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Browser:
    """One headless Chromium, spoken to over the DevTools protocol on a pipe."""

    def __init__(self, binary: str, profile: Path, log: Path) -> None:
        cmd_read, cmd_write = map(_high, os.pipe())
        reply_read, reply_write = map(_high, os.pipe())
        args = [
            binary, "--headless=new",
            "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
            "--remote-debugging-pipe", f"--user-data-dir={profile}", "--disable-gpu", "--no-first-run",
            "--disable-extensions", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio", "about:blank",
        ]
        self.log = open(log, "wb")  # noqa: SIM115 (closed in close())
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _PLACE_FDS, str(cmd_read), str(reply_write), *args],
                pass_fds=(cmd_read, reply_write), stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                start_new_session=True)
        finally:
            os.close(cmd_read)
            os.close(reply_write)
        self.out, self.inp = cmd_write, reply_read
        self.buffer = b""
        self.last_id = 0
        self.events: list[dict[str, Any]] = []

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self.inp], [], [], left)
            if ready:
                chunk = os.read(self.inp, 1 << 20)
                if not chunk:
                    raise EOFError(f"Chromium closed the DevTools pipe (exit code {self.proc.poll()})")
                self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(message)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = TIMEOUT) -> dict[str, Any]:
        self.last_id += 1
        message: dict[str, Any] = {"id": self.last_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        deadline = time.monotonic() + timeout
        while data:
            _, ready, _ = select.select([], [self.out], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError(f"Chromium did not read {method} in time")
            data = data[os.write(self.out, data):]
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self.last_id:
                assert "error" not in reply, f"{method}: {reply['error']}"
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, session: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method and event.get("sessionId") == session:
                    return self.events.pop(i)
            self.events.append(self._message(deadline))

    def close(self) -> None:
        """Ask Chromium to quit, then kill what is left of the process group it was started in (the
        Debian wrapper script and the browser's helper processes, whatever state they are in)."""
        with contextlib.suppress(Exception):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: start_new_session=True
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
            os.close(self.out)
            os.close(self.inp)
            self.log.close()


# -- the page as rendered ---------------------------------------------------------------------------------


class Rendered:
    """One ``DOMSnapshot.captureSnapshot``: every node, and the layout box and computed style of
    every node that is rendered (a node without a box is not on the page)."""

    STYLES = ("display", "visibility", "margin-top")

    def __init__(self, raw: dict[str, Any]) -> None:
        strings = raw["strings"]
        doc = raw["documents"][0]
        nodes, layout = doc["nodes"], doc["layout"]
        self.parent: list[int] = nodes["parentIndex"]
        self.name = [strings[i] for i in nodes["nodeName"]]
        self.value = [strings[i] if i >= 0 else "" for i in nodes["nodeValue"]]
        self.attrs = [{strings[a[i]]: strings[a[i + 1]] for i in range(0, len(a), 2)} for a in nodes["attributes"]]
        self.box: dict[int, tuple[float, float, float, float]] = {}
        self.style: dict[int, dict[str, str]] = {}
        for k, node in enumerate(layout["nodeIndex"]):
            if node not in self.box:  # an element's first layout object is its own box
                self.box[node] = tuple(layout["bounds"][k])  # type: ignore[assignment]
                self.style[node] = dict(zip(self.STYLES, (strings[i] for i in layout["styles"][k]), strict=False))

    def find_all(self, tag: str, **attrs: str) -> list[int]:
        return [i for i, name in enumerate(self.name) if name == tag.upper()
                and all(self.attrs[i].get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def classes(self, i: int) -> set[str]:
        return set(self.attrs[i].get("class", "").split())

    def ancestors(self, i: int) -> Iterator[int]:
        while self.parent[i] >= 0:
            i = self.parent[i]
            yield i

    def within(self, i: int, ancestor: int) -> bool:
        return ancestor in self.ancestors(i)

    def descendants(self, ancestor: int, tag: str, cls: str | None = None) -> list[int]:
        return [i for i in self.find_all(tag) if self.within(i, ancestor) and (cls is None or cls in self.classes(i))]

    def shown(self, i: int) -> bool:
        """Rendered with a size, visible, and not inside a closed <details>."""
        if i not in self.box or self.style[i].get("visibility") != "visible":
            return False
        _, _, width, height = self.box[i]
        closed = any(self.name[a] == "DETAILS" and "open" not in self.attrs[a] for a in self.ancestors(i))
        return width > 0 and height > 0 and not closed



@contextlib.contextmanager
def tab(browser: Browser, url: str, *, scripts: bool = True) -> Iterator[str]:
    """``url`` loaded in a new tab at WIDTH x HEIGHT (scripts disabled unless ``scripts``): its session."""
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    try:
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        browser.send("Page.enable", session=session)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False}, session=session)
        if not scripts:
            browser.send("Emulation.setScriptExecutionDisabled", {"value": True}, session=session)
        navigated = browser.send("Page.navigate", {"url": url}, session=session)
        assert not navigated.get("errorText"), f"{url}: {navigated['errorText']}"
        browser.wait_for("Page.loadEventFired", session)
        yield session
    finally:
        with contextlib.suppress(Exception):
            browser.send("Target.closeTarget", {"targetId": target}, timeout=10)


def screenshots(browser: Browser, session: str, folder: Path, stem: str) -> list[Path]:
    """``stem-first-screen.png`` (what a reader sees on opening it) and ``stem-whole-page.png``."""
    size = browser.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
    whole = {"x": 0, "y": 0, "width": max(WIDTH, int(size["width"] + 0.5)), "height": int(size["height"] + 0.5),
             "scale": 1}
    made = []
    for name, extra in (("first-screen", {}), ("whole-page", {"captureBeyondViewport": True, "clip": whole})):
        png = base64.b64decode(browser.send("Page.captureScreenshot", {"format": "png", **extra},
                                            session=session)["data"])
        assert png.startswith(b"\x89PNG")
        path = folder / f"{stem}-{name}.png"
        path.write_bytes(png)
        made.append(path)
    return made


#: what the page shows as text (innerText: what is rendered, as a reader would copy it) and a few
#: facts that say which mode it ran in; evaluated by DevTools, so it works where scripts may not run
_READ_PAGE = """(() => {
  const texts = (sel, part) => Object.fromEntries(Array.from(document.querySelectorAll(sel),
    e => [e.getAttribute("data-id"), part ? (e.querySelector(part) || {}).innerText || null : e.innerText]));
  const count = sel => document.querySelectorAll(sel).length;
  return {
    fixes: texts("li.fix"), commands: texts("li.fix", ".cmd pre"), rows: texts("details.result", "summary"),
    title: document.title,
    htmlClass: document.documentElement.className, copyButtons: count("button.copy"), blocks: count(".cmd pre"),
    elements: {script: count("script"), img: count("img"), b: count("b"), iframe: count("iframe")},
  };
})()"""


class Shown:
    """One page as one mode rendered it."""

    def __init__(self, mode: str, rendered: Rendered, read: dict[str, Any], shots: list[Path]) -> None:
        self.mode, self.rendered, self.shots = mode, rendered, shots
        self.fixes: dict[str, str] = read["fixes"]
        self.rows: dict[str, str] = read["rows"]
        self.read = read

    def see(self) -> str:
        return f"({self.mode}; see {', '.join(str(p) for p in self.shots)})"


def show(browser: Browser, url: str, mode: str, folder: Path, stem: str) -> Shown:
    with tab(browser, url, scripts=mode != "no-js") as session:
        raw = browser.send("DOMSnapshot.captureSnapshot", {"computedStyles": list(Rendered.STYLES)}, session=session)
        read = browser.send("Runtime.evaluate", {"expression": _READ_PAGE, "returnByValue": True},
                            session=session)["result"]["value"]
        shots = screenshots(browser, session, folder, f"{stem}-{mode}")
    return Shown(mode, Rendered(raw), read, shots)


# -- fixtures ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def artefacts(request, tmp_path_factory) -> Iterator[Path]:
    """Where the screenshots go: ``$HOSTAUDIT_ARTEFACTS/html-report``, else pytest's temporary folder."""
    base = os.environ.get(ARTEFACTS_ENV)
    folder = (Path(base) if base else tmp_path_factory.getbasetemp()) / "html-report"
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
    if any(folder.glob("*.png")):
        line = (f"HTML report in Chromium: pages and screenshots ({WIDTH}x{HEIGHT} first screen, whole page, per "
                f"mode) in {folder} (set {ARTEFACTS_ENV} to keep them elsewhere)")
        plugins = request.config.pluginmanager
        if not plugins.has_plugin(_ArtefactsNote.NAME):
            plugins.register(_ArtefactsNote(line), name=_ArtefactsNote.NAME)


class _ArtefactsNote:
    """Says where the screenshots are, in pytest's closing summary (-q too)."""

    NAME = "hostaudit-html-artefacts"

    def __init__(self, line: str) -> None:
        self.line = line

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter) -> None:
        terminalreporter.write_line(self.line)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return fx.golden_report(tmp_path_factory.mktemp("host"))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return fx.hostile_report(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def site(report, hostile, artefacts, tmp_path_factory) -> Path:
    """The pages, as files (also kept beside the screenshots)."""
    folder = tmp_path_factory.mktemp("site")
    for name, r in (("report.html", report), ("hostile.html", hostile)):
        text = html_report.render(r, exit_code=fx.code(r))
        (folder / name).write_text(text, encoding="utf-8")
        (artefacts / name).write_text(text, encoding="utf-8")
    return folder


class _JenkinsHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files as Jenkins serves archived artefacts: with its default CSP header."""

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", JENKINS_CSP)
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server(site) -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_JenkinsHandler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Browser]:
    binary = need_chromium()
    folder = tmp_path_factory.mktemp("chromium")
    b = Browser(binary, folder / "profile", folder / "chromium.log")
    try:
        yield b
    finally:
        b.close()


def url(mode: str, site: Path, server: str, name: str) -> str:
    return f"{server}/{name}" if mode == "jenkins-csp" else (site / name).as_uri()


@pytest.fixture(scope="module", params=MODES)
def shown(request, browser, site, server, artefacts) -> Shown:
    mode = request.param
    return show(browser, url(mode, site, server, "report.html"), mode, artefacts, "report")


# -- what a reader sees -----------------------------------------------------------------------------------

#: between two fields: a line break or one of the page's separators, blanks around it
SEPARATOR = r"\s*(?:[·—:]|\n)\s*"


def assert_fields_apart(text: str, fields: list[str], where: str) -> None:
    pattern = SEPARATOR.join(re.escape(f) for f in fields)
    assert re.search(pattern, text, flags=re.IGNORECASE), f"{fields} not apart in {text!r} {where}"
    run_together = r"(?i)(fail|error|warn|waived|skip|pass)(critical|high|medium|low|info)"
    assert not re.search(run_together, text), f"status and severity run together in {text!r} {where}"


def fields(row: dict[str, Any]) -> list[str]:
    """A result's fields in the order the page shows them: status word, severity, id, title, the
    gate's note, message."""
    note = [row["gate"]["note"]] if row["gate"]["note"] else []
    return [row["status"].upper(), row["severity"], row["id"], row["title"], *note, row["message"]]


def doc_rows(report) -> dict[str, dict[str, Any]]:
    from reports.document import report_dict

    return {r["id"]: r for r in report_dict(report, exit_code=fx.code(report))["results"]}


def test_the_first_fix_command_is_on_the_first_screen(shown):
    page = shown.rendered
    (fix,) = page.find_all("section", id="fix")
    first = page.descendants(fix, "pre")[0]
    assert page.shown(first), f"the first fix command is not shown {shown.see()}"
    _, top, _, height = page.box[first]
    assert top >= 0 and top + height <= FIRST_SCREEN, (
        f"the first fix command spans {top:.0f}-{top + height:.0f} px, not within the first {FIRST_SCREEN} px "
        f"at {WIDTH} px wide {shown.see()}")


def test_every_summary_row_and_fix_parts_its_fields(shown, report):
    rows = doc_rows(report)
    assert set(shown.rows) == set(rows)
    for check_id, text in shown.rows.items():
        assert_fields_apart(text, fields(rows[check_id]), f"in the row of {check_id} {shown.see()}")
    assert shown.fixes
    for check_id, text in shown.fixes.items():
        assert_fields_apart(text, fields(rows[check_id]), f"in what to fix {shown.see()}")


def test_failure_details_are_shown_open(shown, report):
    page = shown.rendered
    rows = doc_rows(report)
    wanted = [rows[i] for i in text_report_todo(report)]  # what the text report lists, in its order
    assert [r["id"] for r in wanted] == list(shown.fixes), f"what to fix, in order {shown.see()}"
    assert {r["status"] for r in wanted} >= {"fail", "warn", "error"}
    for r in wanted:
        (item,) = page.find_all("li", data_id=r["id"])
        assert page.shown(item), f"{r['id']} is not shown {shown.see()}"
        (message,) = page.descendants(item, "p", "msg")
        parts = [message, *page.descendants(item, "li"), *page.descendants(item, "pre")]
        hidden = [page.name[i] for i in parts if not page.shown(i)]
        assert not hidden, f"{r['id']}: {hidden} not shown {shown.see()}"
        text = shown.fixes[r["id"]]
        assert r["message"] in text
        for e in r["evidence"]:
            assert e["observed"] in text
        for command in (r["remediation"] or {}).get("commands", []):
            assert command in text, f"{r['id']}: command {command!r} not shown {shown.see()}"


def test_each_mode_is_what_it_claims(shown):
    """The CSP header and the disabled scripts really were in force, and the page's script adds only
    what works: the filter toolbar and the copy buttons."""
    page = shown.rendered
    (body,) = page.find_all("body")
    (toolbar,) = page.find_all("nav", id="toolbar")
    styled = page.style[body]["margin-top"] == "0px"  # the page's own style; the browser's is 8px
    scripted = "js" in shown.read["htmlClass"].split()
    assert (styled, scripted) == {"file": (True, True), "jenkins-csp": (False, False), "no-js": (True, False)}[
        shown.mode], shown.see()
    assert page.shown(toolbar) is scripted, shown.see()
    assert shown.read["copyButtons"] == (shown.read["blocks"] if scripted else 0), shown.see()
    assert shown.read["elements"] == {"script": 1, "img": 0, "b": 0, "iframe": 0}


def test_a_hostile_report_stays_inert_in_the_browser(browser, site, hostile, artefacts):
    page = show(browser, (site / "hostile.html").as_uri(), "file", artefacts, "hostile")
    assert "js" in page.read["htmlClass"].split()  # the page's own script ran, and nothing else did
    assert page.read["title"].startswith("hostaudit: <script>document.title='pwned-host'</script>\\x1b[2J")
    assert page.read["elements"] == {"script": 1, "img": 0, "b": 0, "iframe": 0}
    assert next(iter(page.fixes)) == "hostile.fail"  # a critical failure, first
    assert {"hostile.crash", "hostile.warn"} <= set(page.fixes) and not {"hostile.skip", "hostile.waived"} & set(
        page.fixes)
    text = page.fixes["hostile.fail"]
    assert "<script>document.title='pwned'</script> </pre></details><b>bold</b>" in text
    rendered = page.rendered
    (item,) = rendered.find_all("li", data_id="hostile.fail")
    (pre,) = rendered.descendants(item, "pre")
    assert rendered.shown(pre)
    # a command a line, as printable() shows it: a newline inside a host value never starts a line
    commands = next(r for r in hostile.results if r.id == "hostile.fail").outcome.remediation.commands
    assert page.read["commands"]["hostile.fail"].split("\n") == [printable(c) for c in commands]
