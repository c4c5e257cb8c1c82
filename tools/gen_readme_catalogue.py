"""Regenerate the check catalogue in README.md from the built-in plugins.

Run: python tools/gen_readme_catalogue.py   (tests/test_meta.py fails when the README is stale)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

START, END = "<!-- catalogue:start -->", "<!-- catalogue:end -->"


def catalogue_markdown() -> str:
    from audit.engine import collect_checks
    from audit.plugins import make_plugins

    declared, _ = collect_checks(make_plugins(entry_points=False))
    lines = ["| id | severity | applies to | title |", "|---|---|---|---|"]
    for d in declared:
        c = d.check
        where = "running host" if c.runtime_only else "host and image"
        lines.append(f"| `{c.id}` | {c.severity} | {where} | {c.title} |")
    return "\n".join(lines)


def render(readme: str) -> str:
    block = f"{START}\n{catalogue_markdown()}\n{END}"
    return re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, readme, flags=re.S)


if __name__ == "__main__":
    path = ROOT / "README.md"
    path.write_text(render(path.read_text()))
    print(f"updated {path}")
