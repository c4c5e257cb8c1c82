"""Running generated fix scripts in tests, confined so that a wrong path can never touch this machine.

Every script runs inside bubblewrap with all capabilities dropped but file ownership (and chroot
where the step needs it), /proc/sys read-only, a private /tmp, and only the fake root writable:

- ``run_image_script``: the machine read-only, the image root bound at its own path, the script
  run as ``bash fix.sh ROOT`` (the way an image's script runs, from outside the image);
- ``run_live_script``: the fake root *is* ``/`` (its top-level directories bound in, the machine's
  /usr read-only for the tools), so a live script's absolute paths land in the fake root.

Tools that act on a running system or the network are stubs (``STUBS``) that keep their state as
files in the root they act on (a package install leaves a marker and a log line, an enabled unit a
marker, a mount a marker), so running a script twice shows, in ``tree_digest``, whether its second
run did anything again. ``systemctl --root`` on an image is the real one (it works offline).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

BWRAP = shutil.which("bwrap")
BASE_CAPS = ("CAP_SYS_CHROOT", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER")
#: Top-level directories of the machine a live fake root borrows (read-only) for its tools.
SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
STATE = "var/lib/hostaudit-stub"


def require_confinement() -> None:
    """Skip, saying why, where a script cannot be confined (no bubblewrap, or not root: capabilities
    cannot be kept for file ownership)."""
    if BWRAP is None:
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap): fix scripts are only run confined")
    if os.geteuid() != 0:
        pytest.skip("running fix scripts confined needs root (bubblewrap keeps only chosen capabilities)")


def _caps(caps: tuple[str, ...]) -> list[str]:
    out = ["--cap-drop", "ALL"]
    for cap in (*BASE_CAPS, *caps):
        out += ["--cap-add", cap]
    return out


def confined(root: Path, argv: list[str], *, caps: tuple[str, ...] = (), as_root: bool = False,
             env: dict[str, str] | None = None, binds: tuple[Path, ...] = (),
             timeout: int = 900) -> subprocess.CompletedProcess:
    """``argv`` inside bubblewrap: the machine read-only, /proc/sys read-only, a private /tmp, only
    ``root`` writable; all capabilities dropped but chroot and file ownership (and ``caps``).
    ``as_root``: the image is bound as ``/`` (for the image's own tools, such as grub-mkconfig).
    ``binds``: more paths of this machine made visible read-only (scripts, stubs)."""
    base = ["bwrap", "--die-with-parent", "--unshare-pid"]
    if as_root:
        base += ["--bind", str(root), "/", "--dev-bind", "/dev", "/dev", "--proc", "/proc", "--ro-bind", "/sys",
                 "/sys", "--tmpfs", "/tmp"]
    else:
        base += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys",
                 "--tmpfs", "/tmp"]
        for path in binds:
            base += ["--ro-bind", str(path), str(path)]
        base += ["--bind", str(root), str(root)]
    return subprocess.run([*base, *_caps(caps), *argv], capture_output=True, text=True, timeout=timeout,
                          env=env or ENV)


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
    for dirpath, dirnames, _ in os.walk(root):  # links to directories are not walked into above
        for name in dirnames:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                out[os.path.relpath(p, root)] = "-> " + os.readlink(p)
    return out


# -- stubs ------------------------------------------------------------------------------------------

#: What the stub package managers install, so a re-audit sees the tool: package -> files.
PACKAGE_FILES = {
    "libhugetlbfs-bin": {"usr/bin/hugeadm": "#!/bin/sh\n"},
    "libhugetlbfs-utils": {"usr/bin/hugeadm": "#!/bin/sh\n"},
    "ksmtuned": {"usr/sbin/ksmtuned": "#!/bin/sh\n",
                 "lib/systemd/system/ksmtuned.service": "[Unit]\nDescription=KSM tuning\n[Service]\n"
                 "ExecStart=/usr/sbin/ksmtuned\n[Install]\nWantedBy=multi-user.target\n"},
}


def _install_case() -> str:
    lines = []
    for pkg, files in PACKAGE_FILES.items():
        body = "; ".join(f'mkdir -p "$r/{os.path.dirname(f)}"; printf %s {_sh(c)} > "$r/{f}"' for f, c in files.items())
        lines.append(f"            {pkg}) {body} ;;")
    return "\n".join(lines)


def _sh(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


# A package install in root $r: the files, a marker, a log line (a second install shows in the log).
_INSTALL = f"""install_into() {{
    r=$1; pkg=$2
    mkdir -p "$r/{STATE}"
    if [[ -n "$r" ]]; then  # an image: the package's files, for the re-audit (a live root's /usr is the machine's)
        case "$pkg" in
{_install_case()}
        esac
    fi
    touch "$r/{STATE}/pkg-$pkg"
    echo "install $pkg" >> "$r/{STATE}/log"
}}
installed_in() {{ [[ -e "$1/{STATE}/pkg-$2" ]]; }}
"""

IMAGE_STUBS = {
    # chroot "$ROOT" CMD...: dpkg-query and apt-get emulated inside the root; anything else refused
    "chroot": _INSTALL + """r=$1; shift
case "$1" in
    dpkg-query) if installed_in "$r" "${!#}"; then printf installed; else exit 1; fi ;;
    apt-get) [[ -e "$r/usr/sbin/policy-rc.d" ]] || { echo "stub apt-get: no policy-rc.d" >&2; exit 3; }
             [[ "${DEBIAN_FRONTEND:-}" == noninteractive ]] || { echo "stub apt-get: interactive" >&2; exit 3; }
             install_into "$r" "${!#}" ;;
    *) echo "stub chroot: $*" >&2; exit 3 ;;
esac
""",
    "rpm": _INSTALL + """r=; [[ "$1" == --root ]] && { r=$2; shift 2; }
[[ "$1" == -q ]] && installed_in "$r" "$2"
""",
    "dnf": _INSTALL + """r=; [[ "$1" == --installroot ]] && { r=$2; shift 2; }
install_into "$r" "${!#}"
""",
}
IMAGE_STUBS["yum"] = IMAGE_STUBS["dnf"]

_UNITS = f"""s="/{STATE}"; mkdir -p "$s"
args=(); for a in "$@"; do [[ "$a" == --* ]] || args+=("$a"); done
verb=${{args[0]}}
for unit in "${{args[@]:1}}"; do
    case "$verb" in
        enable|on) touch "$s/enabled-$unit" ;;
        disable|off) rm -f "$s/enabled-$unit" ;;
        mask) touch "$s/masked-$unit" ;;
        unmask) rm -f "$s/masked-$unit" ;;
    esac
done
"""
LIVE_STUBS = {
    "apt-get": _INSTALL + 'install_into "" "${!#}"\n',
    "dnf": _INSTALL + 'install_into "" "${!#}"\n',
    "yum": _INSTALL + 'install_into "" "${!#}"\n',
    "zypper": _INSTALL + 'install_into "" "${!#}"\n',
    "dpkg-query": _INSTALL + 'if installed_in "" "${!#}"; then printf installed; else exit 1; fi\n',
    "rpm": _INSTALL + '[[ "$1" == -q ]] && installed_in "" "$2"\n',
    "systemctl": _UNITS,
    "chkconfig": f'mkdir -p /{STATE}; [[ "$2" == on ]] && touch "/{STATE}/enabled-$1" || rm -f "/{STATE}/enabled-$1"\n',
    "service": "exit 0\n",
    "modprobe": f'mkdir -p /{STATE}; touch "/{STATE}/module-$1"\n',
    "mountpoint": f'[[ -e "/{STATE}/mounted-${{2//\\//_}}" ]]\n',
    "mount": f'mkdir -p /{STATE}; [[ ! -e "/{STATE}/mounted-${{!#//\\//_}}" ]] || exit 32\n'
             f'touch "/{STATE}/mounted-${{!#//\\//_}}"; echo "mount ${{!#}}" >> "/{STATE}/log"\n',
    "swapon": f'if [[ "$1" == --show* ]]; then for m in /{STATE}/swap-*; do [[ -e "$m" ]] && cat "$m"; done; exit 0; '
              f'fi\nmkdir -p /{STATE}; [[ ! -e "/{STATE}/swap-${{1//\\//_}}" ]] || exit 1\n'
              f'echo "$1" > "/{STATE}/swap-${{1//\\//_}}"; echo "swapon $1" >> "/{STATE}/log"\n',
    "fallocate": ': > "${!#}"\n',
    "mkswap": 'echo SWAPSPACE2 > "$1"\n',
    # the generators: what matters is that they run after their inputs changed, once
    "update-grub": f'mkdir -p /{STATE}; cat /etc/default/grub /etc/default/grub.d/*.cfg 2>/dev/null '
                   f'> "/{STATE}/regenerated-from"\n',
}
LIVE_STUBS["grub-mkconfig"] = LIVE_STUBS["grub2-mkconfig"] = LIVE_STUBS["update-grub"]


def _write_stubs(where: Path, stubs: dict[str, str]) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    awk = os.path.realpath(shutil.which("awk") or "/usr/bin/awk")
    for name, body in {**stubs, "awk": f'exec {awk} "$@"\n'}.items():
        path = where / name
        path.write_text("#!/bin/bash\nset -uo pipefail\n" + body)
        path.chmod(0o755)
    return where


def run_image_script(root: Path, script: str | Path, work: Path, *, args: list[str] | None = None,
                     caps: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """An image's fix script, run as ``bash fix.sh ROOT`` (``args`` instead of ROOT when given),
    with package managers stubbed."""
    require_confinement()
    path = Path(script) if isinstance(script, Path) else _script(work, script)
    stubs = _write_stubs(work / "image-stubs", IMAGE_STUBS)
    env = {**ENV, "PATH": f"{stubs}:{ENV['PATH']}"}
    return confined(root, ["bash", str(path), *([str(root)] if args is None else args)], caps=caps, env=env,
                    binds=(path, stubs), timeout=120)


def run_live_script(root: Path, script: str | Path, work: Path) -> subprocess.CompletedProcess:
    """A live host's fix script, run with the fake ``root`` as ``/`` and system tools stubbed."""
    require_confinement()
    path = Path(script) if isinstance(script, Path) else _script(work, script)
    stubs = _write_stubs(work / "live-stubs", LIVE_STUBS)
    (root / STATE).mkdir(parents=True, exist_ok=True)  # where the stubs keep their state, inside the root
    argv = ["bwrap", "--die-with-parent", "--unshare-pid"]
    for entry in sorted(root.iterdir()):
        if entry.name not in (*SYSTEM_DIRS, "dev", "tmp"):
            argv += ["--bind", str(entry), "/" + entry.name]
    for name in SYSTEM_DIRS:
        host = Path("/" + name)
        if host.is_symlink():
            argv += ["--symlink", os.readlink(host), "/" + name]
        elif host.is_dir():
            argv += ["--ro-bind", str(host), "/" + name]
    argv += ["--dev", "/dev", "--tmpfs", "/tmp", "--ro-bind", str(stubs), "/stubs", "--ro-bind", str(path), "/fix.sh"]
    env = {**ENV, "PATH": "/stubs:" + ENV["PATH"]}
    return subprocess.run([*argv, *_caps(()), "bash", "/fix.sh"], capture_output=True, text=True, timeout=120,
                          env=env)


def _script(work: Path, text: str) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"fix{len(list(work.glob('fix*.sh')))}.sh"
    path.write_text(text)
    return path


def script_of(commands: list[str], *, image: bool) -> str:
    """A fix script made of ``commands`` with the preamble the fix script reporter writes."""
    from reports.fix_script import IMAGE_ROOT_GUARD

    head = ["#!/usr/bin/env bash", "set -euo pipefail", *(IMAGE_ROOT_GUARD if image else [])]
    return "\n".join([*head, *commands]) + "\n"


def twice(run: Callable[[], subprocess.CompletedProcess], root: Path
          ) -> tuple[dict[str, str], dict[str, str], list[subprocess.CompletedProcess]]:
    """Run a script twice on ``root``: (tree after one run, tree after two runs, the runs)."""
    first = run()
    assert first.returncode == 0, first.stderr[-3000:]
    once = tree_digest(root)
    second = run()
    assert second.returncode == 0, second.stderr[-3000:]
    return once, tree_digest(root), [first, second]
