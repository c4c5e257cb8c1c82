"""Acceptance on a real Debian 12 image root (debootstrap --variant=minbase with linux-image-amd64,
grub-pc, systemd-sysv, procps), built and cached by ``.ci/image-acceptance``.

1. tuned /etc/default/grub, no grub.cfg: the gate passes with the boot checks required, judged on
   the predicted boot;
2. grub-mkconfig, run on the image (inside bubblewrap, the image as its root), writes for the
   default entry exactly the parameters hostaudit predicted;
3. a broken image fails the gate; its fix script, run against the root twice, converges in one
   round, and the second run changes no file;
4. the same with a 1 GiB huge page policy.

Every generated script and every tool run on the image runs inside bubblewrap with the machine
read-only, no capabilities but the ones a step proves it needs, and only the image copy writable.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GATE = ["--fail-on", "medium", "--require", "boot.*", "--require", "iommu.enabled", "--no-entry-points"]
TUNED = "hugepagesz=2M hugepages=512 default_hugepagesz=2M intel_iommu=on transparent_hugepage=madvise"
#: What apt inside the image needs besides file ownership: its download sandbox drops to _apt.
APT_CAPS = ("CAP_SETUID", "CAP_SETGID")


def hostaudit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "audit", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=300)


def set_cmdline(root: Path, value: str) -> None:
    path = root / "etc/default/grub"
    text = re.sub(r'(?m)^GRUB_CMDLINE_LINUX=.*$', f'GRUB_CMDLINE_LINUX="{value}"', path.read_text())
    path.write_text(text)


def audit_json(root: Path, *extra: str) -> tuple[int, dict]:
    out = hostaudit("--root", str(root), "--format", "json", *GATE, *extra)
    assert out.returncode in (0, 1, 3), out.stderr
    return out.returncode, json.loads(out.stdout)


def by_id(doc: dict) -> dict[str, dict]:
    return {r["id"]: r for r in doc["results"]}


def confined(root: Path, argv: list[str], *, caps: tuple[str, ...] = (), as_root: bool = False,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``argv`` inside bubblewrap: the machine read-only, /proc/sys read-only, a private /tmp, only
    ``root`` writable; all capabilities dropped but chroot and file ownership (and ``caps``).
    ``as_root``: the image is bound as ``/`` (for the image's own tools, such as grub-mkconfig)."""
    base = ["bwrap", "--die-with-parent", "--unshare-pid"]
    if as_root:
        base += ["--bind", str(root), "/", "--dev-bind", "/dev", "/dev", "--proc", "/proc", "--ro-bind", "/sys",
                 "/sys", "--tmpfs", "/tmp"]
    else:
        base += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys",
                 "--tmpfs", "/tmp", "--bind", str(root), str(root)]
    base += ["--cap-drop", "ALL"]
    for cap in ("CAP_SYS_CHROOT", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", *caps):
        base += ["--cap-add", cap]
    return subprocess.run([*base, *argv], capture_output=True, text=True, timeout=900,
                          env=env or {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"})


def tree_digest(root: Path) -> dict[str, str]:
    """Every file's content hash, every link's target, every directory: what a second run must keep."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not (dirpath == str(root) and d in ("proc", "sys", "dev", "run",
                                                                                  "tmp"))]
        rel = os.path.relpath(dirpath, root)
        out[rel + "/"] = "dir"
        for name in filenames:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                out[os.path.join(rel, name)] = "-> " + os.readlink(p)
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    out[os.path.join(rel, name)] = hashlib.sha256(f.read()).hexdigest()
    return out


# -- 1. a tuned image without grub.cfg is judged on the boot it will get ----------------------------


def test_tuned_image_without_grub_cfg_passes_the_gate_on_its_predicted_boot(image):
    root = image()
    assert not (root / "boot/grub/grub.cfg").exists(), "the image must not have a generated grub.cfg"
    set_cmdline(root, TUNED)
    code, doc = audit_json(root)
    results = by_id(doc)
    assert code == 0, [(r["id"], r["status"], r["message"]) for r in doc["results"] if r["gate"]["counts"]]
    assert results["boot.hugepages"]["status"] == "pass"
    assert "predicted" in results["boot.hugepages"]["message"]
    assert results["iommu.enabled"]["status"] == "pass"
    assert results["memory.thp"]["status"] == "pass"
    for check_id, result in results.items():
        if check_id.startswith("boot."):
            assert result["status"] == "pass", (check_id, result["message"])


# -- 2. the prediction is what grub-mkconfig writes ----------------------------------------------------


def _default_entry_args(grub_cfg: str) -> list[str]:
    """The parameters after ``root=<device> ro`` of the first Linux entry grub-mkconfig wrote (the
    default, GRUB_DEFAULT=0). ``BOOT_IMAGE`` is added by GRUB at boot and is not in the file; the
    kernel path and ``root=`` depend on the disk and are excluded."""
    for line in grub_cfg.splitlines():
        m = re.match(r"\s*linux\s+(\S+)\s+root=\S+\s+ro(?:\s+(.*))?$", line)
        if m:
            return (m.group(2) or "").split()
    raise AssertionError("no linux line in the generated grub.cfg")


@pytest.mark.parametrize("cmdline", [
    TUNED,
    "hugepagesz=1G hugepages=4 hugepagesz=2M hugepages=512 iommu=pt intel_iommu=on",
    "console=tty0 console=ttyS0,115200n8 isolcpus=2-3 mitigations=auto,nosmt",
])
def test_prediction_equals_what_grub_mkconfig_writes(image, cmdline):
    root = image()
    set_cmdline(root, cmdline)
    (root / "etc/default/grub.d").mkdir(exist_ok=True)
    (root / "etc/default/grub.d/60-acceptance.cfg").write_text(
        'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT transparent_hugepage=never"\n')
    from audit.boot.resolver import resolve_boot_config
    from audit.host.fs import RootFS

    cfg = resolve_boot_config(RootFS(str(root)), predict=True)
    assert cfg.predicted and cfg.entry is not None and cfg.entry.cmdline is not None, cfg.summary
    run = confined(root, ["/usr/sbin/grub-mkconfig", "-o", "/boot/grub/grub.cfg"], as_root=True)
    assert run.returncode == 0, run.stderr[-2000:]
    written = _default_entry_args((root / "boot/grub/grub.cfg").read_text())
    assert cfg.entry.cmdline.split() == written, (cfg.entry.cmdline, written)
    # and once generated, hostaudit reads the same parameters from the real grub.cfg
    generated = resolve_boot_config(RootFS(str(root)), predict=True)
    assert not generated.predicted
