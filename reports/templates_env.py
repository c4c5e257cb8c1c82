"""The jinja2 environment of the HTML reports, with the templates compiled ahead of time when it can.

``tools/gen_templates.py`` writes jinja2's compiled form of every template into
``reports/templates/compiled/`` with a manifest (the jinja2 version, each source's sha256). They are
loaded only when the installed jinja2 is that version and the template source is unchanged, so a
stale or foreign compilation is never used: the template is then compiled from source, as jinja2
does by default. Either way the template, its autoescaping and its filters are the same.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).resolve().parent / "templates"
COMPILED = TEMPLATES / "compiled"


def source_environment(filters: Mapping[str, Callable[..., Any]] | None = None) -> Any:
    """The environment that compiles from source (what the compiled modules are made with)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters.update(filters or {})
    return env


def _compiled_usable(name: str) -> bool:
    import jinja2

    try:
        manifest = json.loads((COMPILED / "manifest.json").read_text(encoding="utf-8"))
        digest = hashlib.sha256((TEMPLATES / name).read_bytes()).hexdigest()
    except (OSError, ValueError):
        return False
    return bool(manifest.get("jinja2") == jinja2.__version__ and manifest.get("sources", {}).get(name) == digest)


def environment(name: str, filters: Mapping[str, Callable[..., Any]] | None = None) -> Any:
    """An environment to render template ``name``: the compiled one when usable, else from source."""
    env = source_environment(filters)
    if _compiled_usable(name):
        env.loader = _module_loader(str(COMPILED))
    return env


_LOADERS: dict[str, Any] = {}


def _module_loader(folder: str) -> Any:
    """jinja2's loader of the compiled templates in ``folder``: one for the process. A ModuleLoader
    puts a weak proxy of a package of its own into ``sys.modules``, taken out when the loader dies;
    one made for every report (a fleet writes one per host) is a new package each time, and leaves
    dead proxies in ``sys.modules`` until the collector frees the loader (anything walking
    ``sys.modules`` meanwhile, as hypothesis does between test cases, gets a ReferenceError)."""
    loader = _LOADERS.get(folder)
    if loader is None:
        from jinja2 import ModuleLoader

        loader = _LOADERS[folder] = ModuleLoader(folder)
    return loader
