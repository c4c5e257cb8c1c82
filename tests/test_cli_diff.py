"""hostaudit diff: drift between two audits of the same host, end to end."""

from __future__ import annotations

import json

from tests.conftest import kconfig_sample
from tests.test_cli import hostaudit


def _report(make_root, tmp_path, name, spec):
    path = tmp_path / f"{name}.json"
    hostaudit("--root", str(make_root(spec)), "-q", "--select", "kernel.*", "-o", str(path))
    return path


def test_a_kernel_that_lost_an_option_is_worse(make_root, tmp_path):
    good = kconfig_sample("debian12-config-6.1.0-56-amd64").read_text()
    bad = good.replace("CONFIG_KSM=y", "# CONFIG_KSM is not set")
    old = _report(make_root, tmp_path, "old", {"boot/config-6.1.0-56-amd64": good})
    new = _report(make_root, tmp_path, "new", {"boot/config-6.1.0-56-amd64": bad})
    out = hostaudit("diff", str(old), str(new))
    assert out.returncode == 1
    assert "worse" in out.stdout and "kernel.ksm" in out.stdout and "pass ->" in out.stdout
    back = hostaudit("diff", str(new), str(old), "--format", "json")
    assert back.returncode == 0
    doc = json.loads(back.stdout)
    assert [(c["id"], c["kind"]) for c in doc["changes"]] == [("kernel.ksm", "better")]
    assert doc["worse"] == 0


def test_no_changes(make_root, tmp_path):
    spec = {"boot/config-6.1.0-56-amd64": kconfig_sample("debian12-config-6.1.0-56-amd64")}
    a, b = _report(make_root, tmp_path, "a", spec), _report(make_root, tmp_path, "b", spec)
    out = hostaudit("diff", str(a), str(b))
    assert out.returncode == 0 and "no changes" in out.stdout


def test_bad_input_is_exit_2_with_one_line(tmp_path):
    junk = tmp_path / "junk.json"
    junk.write_text('{"schema_version": 2}')
    for args in ([str(junk), str(junk)], [str(tmp_path / "missing.json"), str(junk)]):
        out = hostaudit("diff", *args)
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
