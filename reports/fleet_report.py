"""The fleet's own outputs, written by the parent of a fleet run as each host's row arrives.

* text: a table of hosts, worst first (``render_text``);
* JSON (``reports/schemas/fleet-v1.json``): ``{"fleet": {...}, "hosts": [...], "kind":
  "hostaudit-fleet", "schema_version": 1, "tool": {...}}`` with keys sorted: ``hosts`` holds each
  audited host's schema-v1 report (``reports/document.py``), in input order; ``fleet`` the run and
  a row per host, worst first, with an ``error`` for a snapshot that could not be audited;
* JUnit: ``<testsuites>`` with one ``<testsuite>`` per host;
* Prometheus: every series of ``reports/prometheus.py`` per host, labelled ``host`` and
  ``snapshot``, each family's samples together, plus the fleet's own series;
* HTML: ``reports/fleet_html.py``.

The per-host parts are spooled to a temporary file as they come (``Spool``), and the file is
assembled at the end behind its header (the totals and the sorted keys need every host first), then
renamed into place: memory holds the rows, never the reports. Host text reaches these files only
through the reporters' escaping (``sanitize_tree``, ``printable``, ``prometheus.label_value``,
ElementTree).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol, TextIO

from audit.model import Status
from reports import jsontext
from reports.sanitize import printable, sanitize_tree

SCHEMA_VERSION = 1
KIND = "hostaudit-fleet"
#: hosts whose gate failed first, then hosts that errored, then the rest
OUTCOME_RANK = {"failed": 0, "errored": 1, "passed": 2}
STATUSES: tuple[str, ...] = tuple(s.value for s in Status)


class FleetRow(Protocol):
    """A host's row (``audit.fleet.HostOutcome``): what the fleet outputs show of a host."""

    @property
    def index(self) -> int: ...
    @property
    def source(self) -> str: ...
    @property
    def stem(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def exit_code(self) -> int: ...
    @property
    def summary(self) -> Mapping[str, int]: ...
    @property
    def counting(self) -> int: ...
    @property
    def error(self) -> str | None: ...
    @property
    def hostname(self) -> str | None: ...
    @property
    def os(self) -> str | None: ...
    @property
    def kernel_release(self) -> str | None: ...
    @property
    def duration_ms(self) -> float: ...
    @property
    def outcome(self) -> Any: ...
    def results(self) -> Iterator[tuple[str, str, bool]]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetRun:
    """The run as a whole: when, how long, judged by what, with what result."""

    started_at: str
    duration_ms: float
    exit_code: int
    tool_version: str
    profile: str
    fail_on: str
    strict: bool
    required: tuple[str, ...] = ()
    interrupted: bool = False  # Ctrl-C: the rows are the hosts that finished


def worst_first(rows: Iterable[FleetRow]) -> list[FleetRow]:
    """Failed gates first (most counting results first), then errors (snapshots that could not be
    audited first), then the rest; by name within each."""
    def key(r: FleetRow) -> tuple[Any, ...]:
        s = r.summary
        return (OUTCOME_RANK.get(str(r.outcome), 3), r.error is None, -r.counting, -s.get("fail", 0),
                -s.get("error", 0), -s.get("warn", 0), r.name, r.source)

    return sorted(rows, key=key)


def outcome_counts(rows: Iterable[FleetRow]) -> dict[str, int]:
    counts = dict.fromkeys(OUTCOME_RANK, 0)
    for r in rows:
        counts[str(r.outcome)] = counts.get(str(r.outcome), 0) + 1
    return counts


def status_counts(rows: Iterable[FleetRow]) -> dict[str, int]:
    total = dict.fromkeys(STATUSES, 0)
    for r in rows:
        for k, v in r.summary.items():
            total[k] = total.get(k, 0) + v
    return total


def host_row(r: FleetRow, reports: Mapping[int, int]) -> dict[str, Any]:
    """One host's row of ``fleet.hosts``."""
    return {
        "name": r.name,
        "source": r.source,
        "outcome": str(r.outcome),
        "exit_code": r.exit_code,
        "counting": r.counting,
        "summary": dict(r.summary) if r.error is None else None,
        "error": r.error,
        "hostname": r.hostname,
        "os": r.os,
        "kernel_release": r.kernel_release,
        "report": reports.get(r.index),
    }


def fleet_head(rows: Sequence[FleetRow], run: FleetRun) -> dict[str, Any]:
    """The ``fleet`` object of the JSON document without its ``hosts``."""
    return {
        "started_at": run.started_at,
        "duration_ms": round(run.duration_ms, 3),
        "exit_code": run.exit_code,
        "interrupted": run.interrupted,
        "profile": run.profile,
        "gate": {"fail_on": run.fail_on, "strict": run.strict, "required": list(run.required)},
        "summary": {"hosts": len(rows), **outcome_counts(rows)},
        "results": status_counts(rows),
    }


def fleet_dict(rows: Sequence[FleetRow], run: FleetRun, reports: Mapping[int, int]) -> dict[str, Any]:
    """The ``fleet`` object of the JSON document; ``reports`` maps a row's index to its report's
    position in ``hosts`` (a host without one could not be audited)."""
    return {**fleet_head(rows, run), "hosts": [host_row(r, reports) for r in worst_first(rows)]}


# -- text ----------------------------------------------------------------------------------------------
TEXT_HEADERS = ("host", "snapshot", "result", "counting", "fail", "error", "warn", "waived", "skip", "pass")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    """A plain table like tabulate's "simple" format, without its cost on ten thousand rows."""
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return [line(headers), "  ".join("-" * w for w in widths), *(line(row) for row in rows)]


def summary_line(rows: Sequence[FleetRow], run: FleetRun) -> str:
    out = outcome_counts(rows)
    gate = f"--fail-on {run.fail_on}" + (", --strict" if run.strict else "")
    if run.required:
        gate += f", required: {' '.join(run.required)}"
    head = f"{len(rows)} hosts: {out['failed']} failed, {out['errored']} errored, {out['passed']} passed"
    tail = "; interrupted: only the hosts above were audited" if run.interrupted else ""
    return f"{head}; gate: {gate}; exit code {run.exit_code}{tail}"


def render_text(rows: Sequence[FleetRow], run: FleetRun) -> str:
    """The fleet table: a line per host, worst first; the snapshots that could not be audited and
    why; a summary line."""
    ordered = worst_first(rows)
    body = []
    for r in ordered:
        label = {"failed": "FAILED", "errored": "ERROR", "passed": "ok"}.get(str(r.outcome), str(r.outcome))
        if r.error is not None:
            counts = ["-"] * 7
        else:
            counts = [str(r.counting), *(str(r.summary.get(s, 0)) for s in ("fail", "error", "warn", "waived",
                                                                             "skip", "pass"))]
        body.append([printable(r.name), printable(r.source), label, *counts])
    lines = [f"hostaudit {run.tool_version}: fleet of {len(rows)} snapshot(s), profile {printable(run.profile)}", ""]
    lines += _table(TEXT_HEADERS, body, right=set(range(3, 10)))
    broken = [r for r in ordered if r.error is not None]
    if broken:
        lines += ["", "could not be audited:"]
        lines += [f"  {printable(r.source)}: {printable(r.error or '')}" for r in broken]
    lines += ["", summary_line(rows, run)]
    return "\n".join(lines) + "\n"


# -- spooling and assembling -----------------------------------------------------------------------------
class Spool:
    """Text appended as hosts finish, kept in an unnamed temporary file, not in memory."""

    def __init__(self, folder: str | None) -> None:
        # beside the output when its folder is there (the same file system for the final copy); else
        # the temporary folder, and writing the output says what is wrong with its folder, once
        try:
            file = tempfile.TemporaryFile("w+", encoding="utf-8", newline="\n", dir=folder)  # noqa: SIM115
        except OSError:
            file = tempfile.TemporaryFile("w+", encoding="utf-8", newline="\n")  # noqa: SIM115
        self.file: IO[str] = file  # closed by close(): a spool lives as long as its sink
        self.empty = True

    def add(self, text: str, sep: str = "") -> None:
        if not self.empty and sep:
            self.file.write(sep)
        self.file.write(text)
        self.empty = False

    def copy_to(self, out: IO[str]) -> None:
        self.file.flush()
        self.file.seek(0)
        shutil.copyfileobj(self.file, out, 1 << 20)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()


def _folder(path: str | None) -> str | None:
    return None if path is None else os.path.dirname(os.path.abspath(path))


def _copy(parts: Iterable[str | Spool], out: TextIO) -> None:
    for part in parts:
        if isinstance(part, Spool):
            out.flush()
            part.copy_to(out)
        else:
            out.write(part)


def assemble(path: str | None, parts: Iterable[str | Spool], *, mode: int | None = None) -> None:
    """Write ``parts`` (text, or a spool's content) to ``path`` atomically (``reports.output``'s
    writer: temporary file in the same folder, fsync, rename), or to stdout when ``path`` is None."""
    if path is None:
        _copy(parts, sys.stdout)
        sys.stdout.flush()
        return
    from reports.output import write_atomic_with

    write_atomic_with(path, lambda fh: _copy(parts, fh), mode=mode)


class Sink:
    """One fleet output (a file, or stdout when ``path`` is None): ``add`` each host's row and
    what its worker rendered, in input order; ``finish`` writes it whole; ``close`` drops the spools."""

    needs: tuple[str, ...] = ()  # what the workers must render for it: "json", "junit", "prometheus"

    def __init__(self, path: str | None, *, mode: int | None = None) -> None:
        self.path = path
        self.mode = mode

    def add(self, row: FleetRow, payload: Mapping[str, Any]) -> None:
        pass

    def finish(self, rows: Sequence[FleetRow], run: FleetRun) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class TextSink(Sink):
    def finish(self, rows: Sequence[FleetRow], run: FleetRun) -> None:
        assemble(self.path, [render_text(rows, run)], mode=self.mode)


def _json(value: Any, indent: str = "") -> str:
    text = jsontext.dumps(sanitize_tree(value), indent=2, sort_keys=True, ensure_ascii=False)
    return text.replace("\n", "\n" + indent) if indent else text


class JsonSink(Sink):
    needs = ("json",)

    def __init__(self, path: str | None, *, mode: int | None = None) -> None:
        super().__init__(path, mode=mode)
        self.spool = Spool(_folder(path))
        self.reports: dict[int, int] = {}

    def add(self, row: FleetRow, payload: Mapping[str, Any]) -> None:
        text = payload.get("json")
        if text is not None:
            self.reports[row.index] = len(self.reports)
            self.spool.add(text, ",\n")

    def finish(self, rows: Sequence[FleetRow], run: FleetRun) -> None:
        assemble(self.path, self._parts(rows, run), mode=self.mode)

    def _parts(self, rows: Sequence[FleetRow], run: FleetRun) -> Iterator[str | Spool]:
        """The document with sorted keys, as ``json.dumps(..., indent=2, sort_keys=True)`` writes it,
        a host's row and a host's report at a time."""
        def members(d: dict[str, Any], indent: str) -> str:  # '"a": 1,\n<indent>"b": 2' of a dict's text
            return _json(d, indent)[1:-1].strip("\n ").strip()

        head = fleet_head(rows, run)
        yield '{\n  "fleet": {\n    '
        yield members({k: v for k, v in head.items() if k < "hosts"}, "  ")
        yield ',\n    "hosts": ['
        for i, r in enumerate(worst_first(rows)):
            yield ("," if i else "") + "\n      " + _json(host_row(r, self.reports), "      ")
        yield "\n    ]," if rows else "],"
        yield "\n    " + members({k: v for k, v in head.items() if k > "hosts"}, "  ")
        yield '\n  },\n  "hosts": ['
        if not self.spool.empty:
            yield from ("\n", self.spool, "\n  ")
        rest = {"kind": KIND, "schema_version": SCHEMA_VERSION,
                "tool": {"name": "hostaudit", "version": run.tool_version}}
        yield "],\n  " + members(rest, "") + "\n}\n"

    def close(self) -> None:
        self.spool.close()


def _junit_time(seconds: float) -> str:
    return f"{seconds:.6f}"  # the Jenkins schema's SUREFIRE_TIME: plain decimals only


class JunitSink(Sink):
    """``<testsuites>``, one ``<testsuite>`` per host; a snapshot that could not be audited is a
    suite with one ``<error>`` testcase named ``snapshot``. The schema allows no ``skipped`` total
    on ``<testsuites>``: each suite has its own."""

    needs = ("junit",)

    def __init__(self, path: str | None, *, mode: int | None = None) -> None:
        super().__init__(path, mode=mode)
        self.spool = Spool(_folder(path))
        self.totals = {"tests": 0, "failures": 0, "errors": 0}
        self.time = 0.0

    def add(self, row: FleetRow, payload: Mapping[str, Any]) -> None:
        suite = payload.get("junit")
        if suite is None and row.error is None:
            return
        if suite is None:
            suite = self._broken(row)
        for k in self.totals:
            self.totals[k] += int(suite[k])
        self.time += float(suite["time"])
        self.spool.add(suite["xml"], "\n")

    @staticmethod
    def _broken(row: FleetRow) -> dict[str, Any]:
        from reports.sanitize import xml_text

        name = xml_text(row.name)
        suite = ET.Element("testsuite", {"name": f"hostaudit.{name}", "tests": "1", "failures": "0", "errors": "1",
                                         "skipped": "0", "time": _junit_time(0.0)})
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", {"name": "snapshot", "value": xml_text(row.source)})
        case = ET.SubElement(suite, "testcase", {"name": "snapshot", "classname": f"hostaudit.{name}",
                                                 "time": _junit_time(0.0)})
        message = xml_text(row.error)
        err = ET.SubElement(case, "error", {"message": message, "type": "snapshot"})
        err.text = message
        ET.indent(suite, space="  ", level=1)
        return {"xml": "  " + ET.tostring(suite, encoding="unicode").rstrip(), "tests": 1, "failures": 0,
                "errors": 1, "time": 0.0}

    def finish(self, rows: Sequence[FleetRow], run: FleetRun) -> None:
        totals = (("name", "hostaudit"), ("tests", self.totals["tests"]), ("failures", self.totals["failures"]),
                  ("errors", self.totals["errors"]), ("time", _junit_time(self.time)))
        attrs = " ".join(f'{k}="{v}"' for k, v in totals)
        parts: list[str | Spool] = ['<?xml version="1.0" encoding="utf-8"?>\n', f"<testsuites {attrs}>"]
        if not self.spool.empty:
            parts += ["\n", self.spool]
        parts += ["\n</testsuites>\n"]
        assemble(self.path, parts, mode=self.mode)

    def close(self) -> None:
        self.spool.close()


class PrometheusSink(Sink):
    """Each family of ``reports.prometheus`` with every host's samples together (the exposition
    format wants a family's lines in one group), then the fleet's own series."""

    needs = ("prometheus",)

    def __init__(self, path: str | None, *, mode: int | None = None) -> None:
        super().__init__(path, mode=mode)
        self.families: dict[str, tuple[str, str, Spool]] = {}
        self.broken: list[FleetRow] = []

    def add(self, row: FleetRow, payload: Mapping[str, Any]) -> None:
        if row.error is not None:
            self.broken.append(row)
            return
        for help_line, type_line, samples in payload.get("prometheus") or ():
            fam = self.families.get(help_line.split(" ", 3)[2])
            if fam is None:
                fam = (help_line, type_line, Spool(_folder(self.path)))
                self.families[help_line.split(" ", 3)[2]] = fam
            if samples:
                fam[2].add(samples, "\n")

    def finish(self, rows: Sequence[FleetRow], run: FleetRun) -> None:
        from reports.sanitize import prom_label_value as label_value

        parts: list[str | Spool] = []
        for help_line, type_line, spool in self.families.values():
            parts += [help_line, "\n", type_line, "\n"]
            if not spool.empty:
                parts += [spool, "\n"]

        def family(name: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]) -> list[str]:
            out = [f"# HELP hostaudit_{name} {help_text}\n", f"# TYPE hostaudit_{name} gauge\n"]
            for labels, value in samples:
                shown = ",".join(f'{k}="{label_value(v)}"' for k, v in labels.items())
                number = str(int(value)) if float(value).is_integer() else repr(float(value))
                out.append(f"hostaudit_{name}{{{shown}}} {number}\n" if shown else f"hostaudit_{name} {number}\n")
            return out

        counts = outcome_counts(rows)
        parts += family("fleet_hosts", "Hosts of the last fleet run per outcome (failed: the gate failed; errored: "
                                       "a check errored or the snapshot could not be audited).",
                        [({"outcome": k}, v) for k, v in counts.items()])
        parts += family("fleet_snapshot_error", "1 for each snapshot the last fleet run could not audit.",
                        [({"host": r.name, "snapshot": r.source}, 1) for r in self.broken])
        parts += family("fleet_exit_code", "Exit code of the last fleet run: 0 passed, 1 a host failed its gate, "
                                           "3 a host errored.", [({}, run.exit_code)])
        parts += family("fleet_run_duration_seconds", "How long the last fleet run took.",
                        [({}, round(run.duration_ms / 1000.0, 6))])
        assemble(self.path, parts, mode=self.mode)

    def close(self) -> None:
        for _, _, spool in self.families.values():
            spool.close()
