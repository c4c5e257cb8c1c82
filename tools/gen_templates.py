"""Compile the HTML templates ahead of time: reports/templates/compiled/.

    python tools/gen_templates.py

jinja2 compiles a template to Python on first use, every run (about 50 ms for report.html, more than
the whole audit of a host). This writes jinja2's own compiled form of each template as a module
(``Environment.compile_templates``), plus ``manifest.json`` with the jinja2 version that compiled
them and each source's sha256. At run time (``reports/templates_env.py``) the compiled modules are
used only when both still match; otherwise the template is compiled from source as before. A test
(tests/test_templates_compiled.py) fails when a template changed and this was not rerun.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reports.templates_env import COMPILED, TEMPLATES, source_environment  # noqa: E402

#: each template and the module:attribute holding the filters it is rendered with (jinja2 checks
#: at compile time that every filter a template uses exists)
TEMPLATE_FILTERS = {"report.html": "reports.html_report:FILTERS", "fleet.html": "reports.html_report:FILTERS"}


def _filters() -> dict[str, object]:
    import importlib

    out: dict[str, object] = {}
    for spec in TEMPLATE_FILTERS.values():
        module, _, attr = spec.partition(":")
        out.update(getattr(importlib.import_module(module), attr))
    return out


def main(out: Path = COMPILED) -> None:
    import jinja2

    env = source_environment(_filters())
    names = sorted(TEMPLATE_FILTERS)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    env.compile_templates(str(out), zip=None, filter_func=lambda n: n in names, ignore_errors=False)
    manifest = {
        "jinja2": jinja2.__version__,
        "sources": {n: hashlib.sha256((TEMPLATES / n).read_bytes()).hexdigest() for n in names},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(f"compiled {len(names)} templates into {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")


if __name__ == "__main__":
    main()
