"""Host bytes that are not UTF-8 never break a report (issue #11, item 2): one ``\\xff`` in a grub.cfg
kernel line or a non-UTF-8 file name in a snapshot; every -o report is written and stdout is UTF-8."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from reports.sanitize import no_surrogates, printable, sanitize_tree
from tests import trees

REPO = Path(__file__).resolve().parents[1]


def test_surrogates_are_shown_as_the_bytes_they_stand_for():
    raw = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")
    assert no_surrogates(raw) == "caf\\xe9 \\xff"
    assert printable(raw + "\x1b[2J") == "caf\\xe9 \\xff\\x1b[2J"
    assert sanitize_tree({raw: [raw, 1, None]}) == {"caf\\xe9 \\xff": ["caf\\xe9 \\xff", 1, None]}
    assert no_surrogates("\ud800x") == "\\ud800x"


def test_non_utf8_bytes_in_grub_cfg_reach_every_report(make_root, tmp_path):
    tree = trees.debian12_tree(booted="quiet")
    tree["boot/grub/grub.cfg"] = tree["boot/grub/grub.cfg"].encode().replace(b"quiet", b"quiet caf\xe9=\xff")
    root = make_root(tree)
    outs = {s: tmp_path / f"r.{s}" for s in ("json", "txt", "xml", "html", "sh")}
    args = [sys.executable, "-m", "audit", "--root", str(root), "--no-entry-points"]
    run = subprocess.run([*args, *(a for p in outs.values() for a in ("-o", str(p))), "--format", "json"],
                         capture_output=True, timeout=120, cwd=REPO)
    assert run.returncode in (0, 1, 3), run.stderr
    doc = json.loads(run.stdout.decode("utf-8"))  # strict UTF-8
    observed = [e["observed"] for r in doc["results"] for e in r["evidence"]]
    assert any("caf\\xe9=\\xff" in o for o in observed), observed
    for suffix, path in outs.items():
        text = path.read_bytes().decode("utf-8")  # every report is written, and is UTF-8
        if suffix != "sh":  # the script holds only the failed checks' evidence
            assert "xe9" in text, path
