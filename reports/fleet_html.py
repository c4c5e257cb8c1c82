"""The fleet's HTML page: a host x check matrix, worst hosts first, each host linking to its own page
(written by the workers into a folder beside this page: ``fleet.html`` -> ``fleet-hosts/<stem>.html``).

Built with jinja2 from ``templates/fleet.html``, autoescaped by its ``.html`` name; every host value also
goes through ``show`` (control and bidi characters made visible), as on a host's own page. One
self-contained file: inline CSS allowed by its hash, no script.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

from reports.fleet_report import (
    FleetRow,
    FleetRun,
    Sink,
    assemble,
    outcome_counts,
    status_counts,
    summary_line,
    worst_first,
)

#: status -> the letter a matrix cell shows (the colour says the rest; the title the whole word)
LETTERS = {"pass": "P", "warn": "W", "fail": "F", "error": "E", "skip": "S", "waived": "V"}


def pages_dir(path: str) -> str:
    """Where the host pages of the fleet page ``path`` go: ``DIR/fleet.html`` -> ``DIR/fleet-hosts``."""
    base = os.path.basename(path)
    stem = base[:-5] if base.lower().endswith(".html") and len(base) > 5 else base
    return os.path.join(os.path.dirname(path), f"{stem}-hosts")


def _table(ordered: Sequence[FleetRow], ids: Sequence[str], pages: str | None) -> Iterator[dict[str, Any]]:
    """The matrix, a row at a time (ten thousand hosts are a quarter of a million cells)."""
    column = {check_id: i for i, check_id in enumerate(ids)}
    for r in ordered:
        cells: list[tuple[str, str, str]] = [("none", "", "not run")] * len(ids)
        for check_id, status, counts in r.results():
            cls = f"s-{status}" + (" counts" if counts else "")
            title = f"{check_id}: {status}" + (", counts towards exit 1" if counts else "")
            cells[column[check_id]] = (cls, LETTERS.get(status, "?"), title)
        href = f"{quote(pages)}/{quote(r.stem)}.html" if pages is not None and r.error is None else None
        yield {"row": r, "outcome": str(r.outcome), "href": href, "cells": cells}


def chunks(rows: Sequence[FleetRow], run: FleetRun, *, pages: str | None) -> Iterator[str]:
    """The page, in pieces as the template makes them; ``pages``: the folder of the host pages,
    relative to the page (None: no links)."""
    from reports.html_report import FILTERS
    from reports.templates_env import environment

    ordered = worst_first(rows)
    ids = sorted({check_id for r in ordered for check_id, _, _ in r.results()})
    template = environment("fleet.html", FILTERS).get_template("fleet.html")  # the host page's filters
    return iter(template.generate(
        run=run,
        ids=ids,
        table=_table(ordered, ids, pages),
        hosts=len(rows),
        outcomes=outcome_counts(rows),
        results=status_counts(rows),
        summary=summary_line(rows, run),
    ))


def render(rows: Sequence[FleetRow], run: FleetRun, *, pages: str | None) -> str:
    """The whole page as one string."""
    return "".join(chunks(rows, run, pages=pages))


class HtmlSink(Sink):
    """``-o fleet.html``: the page, its host pages in ``fleet-hosts/`` (the workers write those)."""

    def __init__(self, path: str | None, *, mode: int | None = None) -> None:
        super().__init__(path, mode=mode)
        self.pages = pages_dir(path) if path is not None else None

    def finish(self, rows: Sequence[FleetRow], run: FleetRun) -> None:
        rel = os.path.basename(self.pages) if self.pages is not None else None
        assemble(self.path, chunks(rows, run, pages=rel), mode=self.mode)  # written as it is made
