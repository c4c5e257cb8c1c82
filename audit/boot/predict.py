"""The next boot of an image whose boot configuration is not generated yet.

An image root normally has the generators' inputs and no output: ``grub.cfg`` is first written when
the image is assembled onto a disk (``grub-install`` + ``update-grub``), and a BLS entry when a
kernel is installed. This module says what the generator will write into the default entry, from
the same inputs and with the same semantics, or says why it cannot know:

- GRUB 2 (``grub-mkconfig``, ``grub2-mkconfig``): ``/etc/default/grub`` sourced by a shell, then
  (Debian family only: a Debian patch) ``/etc/default/grub.d/*.cfg`` in order; the normal entry
  gets ``linux <kernel> root=<device> ro ${GRUB_CMDLINE_LINUX} ${GRUB_CMDLINE_LINUX_DEFAULT}``,
  which GRUB's own script reader then splits at boot (replayed here with the GRUB evaluator). A
  file that does more than assign and expand variables (``if``, ``.``/``source``, a function, any
  command) or a command-line variable built from ``$(...)``/backticks makes the prediction unknown.
- BLS (Fedora, RHEL 8+): ``kernel-install`` takes ``/etc/kernel/cmdline``, else
  ``/usr/lib/kernel/cmdline``, else the ``/proc/cmdline`` of whatever system runs it (in a
  pipeline, the build host): unknown. RHEL 8 entries say ``options $kernelopts``; without a grubenv
  ``grub2-mkconfig`` fills ``kernelopts`` from ``GRUB_CMDLINE_LINUX`` (see ``kernelopts_prediction``).

``root=<device> ro`` are never predicted: the generator writes them from the device the image is
installed on. Everything else is, with the file and line each value comes from.
"""

from __future__ import annotations

from audit.boot.model import DEFAULT_GRUB, DEFAULT_GRUB_D, GRUB2_CONFIGS, KERNEL_CMDLINE
from audit.boot.reader import GrubFilesInRoot, Reader, parse_script
from audit.errors import ParseError
from audit.model import Evidence
from audit.parsers import grub  # each GRUB parser loads on first use: none on a host without GRUB
from audit.parsers.osrelease import identify_os, parse_os_release
from audit.parsers.version import newest
from audit.record import Record

USR_KERNEL_CMDLINE = "/usr/lib/kernel/cmdline"
OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")
CMDLINE_VARIABLES = ("GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT")
#: The placeholder device the prediction runs GRUB's reader with; never shown as a parameter.
_ROOT = "root=HOSTAUDIT-PREDICTED-ROOT"


class Prediction(Record):
    generator: str  # "grub-mkconfig", "grub2-mkconfig", "kernel-install"
    loader: str  # "grub2" or "grub2-bls": what the generated configuration will be read by
    config_path: str  # the file the generator will write (grub.cfg, or the BLS entries' directory)
    kernel: str | None  # the kernel the default entry will boot, when one is installed
    args: str | None  # the default entry's parameters after "root=<device> ro"; None: unknown
    summary: str  # "predicted: ... not generated yet; ... will write it from ..."
    note: str  # the short form for messages: "predicted: /boot/grub/grub.cfg not generated yet"
    evidence: tuple[Evidence, ...] = ()
    problems: tuple[str, ...] = ()


def distro_family(reader: Reader) -> str | None:
    """'debian', 'rhel', 'suse' or None, by what the root holds (os-release, else the older files)."""
    for path in OS_RELEASE_PATHS:
        text = reader.text(path)
        if text is not None:
            family = parse_os_release(text).family()
            if family:
                return family
            break
    ident = identify_os(lambda path: reader.text(path) if reader.is_file(path) else None)
    return ident.family if ident else None


def _grub_files(reader: Reader, family: str | None) -> list[str]:
    files = [DEFAULT_GRUB] if reader.is_file(DEFAULT_GRUB) else []
    if family in (None, "debian"):  # the grub.d snippets are a Debian patch to grub-mkconfig
        files += [f"{DEFAULT_GRUB_D}/{n}" for n in sorted(reader.listdir(DEFAULT_GRUB_D)) if n.endswith(".cfg")
                  and reader.is_file(f"{DEFAULT_GRUB_D}/{n}")]
    return files


def _installed_kernels(reader: Reader) -> list[str]:
    """Kernel versions with an image in /boot, as grub-mkconfig's 10_linux finds them."""
    found = []
    for name in reader.listdir("/boot"):
        for prefix in ("vmlinuz-", "vmlinux-", "kernel-"):
            if name.startswith(prefix) and len(name) > len(prefix) and not name.endswith((".old", ".bak")):
                found.append(name[len(prefix):])
    return found


def _generator(reader: Reader, family: str | None) -> tuple[str, str]:
    """(generator command, the grub.cfg it writes) for this family, by the tools the root holds."""
    if family == "debian":
        return "grub-mkconfig", "/boot/grub/grub.cfg"
    if family in ("rhel", "suse"):
        return "grub2-mkconfig", "/boot/grub2/grub.cfg"
    for tool, cfg in (("grub2-mkconfig", GRUB2_CONFIGS[0]), ("grub-mkconfig", GRUB2_CONFIGS[1])):
        if any(reader.fs.kind(f"{d}/{tool}") is not None for d in ("/usr/sbin", "/sbin", "/usr/bin")):
            return tool, cfg
    return "grub-mkconfig", "/boot/grub/grub.cfg"


def read_grub_defaults(reader: Reader, family: str | None) -> tuple[dict[str, grub.ShellVar], list[str], list[str]]:
    """The variables grub-mkconfig's shell holds after sourcing its inputs: (variables, files read,
    reasons the values are unknown). A reason names the file and line."""
    env: dict[str, grub.ShellVar] = {}
    unknown: list[str] = []
    read: list[str] = []
    for path in _grub_files(reader, family):
        text = reader.text(path)
        if text is None:
            unknown.append(f"{path}: could not be read")
            continue
        read.append(path)
        try:
            parsed = grub.parse_shell_vars(text, env=env, tag=path)
        except ParseError as exc:
            unknown.append(f"{path}:{exc.line or '?'}: {exc.problem}")
            continue
        for line, word in parsed.commands[:1]:
            unknown.append(f"{path}:{line}: '{word}' is shell code beyond assignments, which hostaudit does not"
                           " run: any value after it may differ")
        env = parsed.variables
    for name in CMDLINE_VARIABLES:
        var = env.get(name)
        if var is not None and var.dynamic:
            unknown.append(f"{name} ({', '.join(var.origins)}) is built from a command substitution"
                           " ($(...) or backticks), which hostaudit does not run")
    return env, read, unknown


def grub_args(env: dict[str, grub.ShellVar]) -> str:
    """What 10_linux puts after ``root=<device> ro`` in the normal (non-recovery) entry."""
    linux = env.get("GRUB_CMDLINE_LINUX")
    default = env.get("GRUB_CMDLINE_LINUX_DEFAULT")
    return f"{linux.value if linux else ''} {default.value if default else ''}"


def _variable_evidence(env: dict[str, grub.ShellVar], note: str) -> list[Evidence]:
    out = []
    for name in CMDLINE_VARIABLES:
        var = env.get(name)
        if var is not None:
            where = var.origins[-1].rsplit(":", 1)
            out.append(Evidence(source=where[0], observed=f"line {where[1] if len(where) > 1 else '?'}: "
                                f"{name}={var.value!r} ({note})"))
    return out


def _as_grub_reads_it(reader: Reader, kernel: str, args: str) -> tuple[str | None, list[str]]:
    """The written line ``linux <kernel> root=<dev> ro <args>`` read back by GRUB's own script reader
    (quotes, escapes and ``$variables`` as at boot): (parameters after "root=<dev> ro", problems)."""
    text = f"menuentry 'predicted' {{\n\tlinux\t{kernel} {_ROOT} ro {args}\n}}\n"
    try:
        run = grub.run_grub_script(parse_script(text), label="(predicted grub.cfg)", files=GrubFilesInRoot(reader),
                              platform=None)
    except ParseError as exc:
        return None, [f"the generated kernel line would not parse as GRUB script: {exc.problem}"]
    entries = [m for m in run.menu if isinstance(m, grub.MenuEntry)]
    k = grub.entry_kernel(entries[0], env=run.env, files=GrubFilesInRoot(reader)) if entries else None
    if k is None or k.cmdline is None:
        return None, ["the generated kernel line would not parse as GRUB script"]
    problems = [f"${v} in the kernel parameters is a GRUB variable that the generated grub.cfg does not set: it"
                " expands to nothing" for v in k.undefined]
    head = f"{_ROOT} ro"
    if k.cmdline != head and not k.cmdline.startswith(head + " "):
        return None, [f"the generated kernel line would not start with root=<device> ro: {k.cmdline[:120]!r}"]
    return k.cmdline[len(head):].strip(), problems


def predict_grub(reader: Reader, family: str | None) -> Prediction | None:
    """What grub-mkconfig will write for the default entry; None when the root has no input for it."""
    files = _grub_files(reader, family)
    if not files:
        return None
    generator, cfg = _generator(reader, family)
    env, read, unknown = read_grub_defaults(reader, family)
    sources = ", ".join(read) or DEFAULT_GRUB
    head = f"predicted: {cfg} not generated yet; {generator} will write it from {sources}"
    versions = _installed_kernels(reader)
    best = newest(versions)
    kernel = f"/boot/vmlinuz-{best}" if best else None
    evidence = _variable_evidence(env, f"{generator} writes it into the default entry")
    if best is None:
        unknown.append(f"no kernel image in /boot: {generator} would write no Linux entry")
    problems: list[str] = []
    args: str | None = None
    if not unknown:
        args, problems = _as_grub_reads_it(reader, kernel or "/boot/vmlinuz", grub_args(env))
    default = env.get("GRUB_DEFAULT")
    if default is not None and default.value not in ("", "0", "saved"):
        problems.append(f"GRUB_DEFAULT={default.value!r} ({', '.join(default.origins)}): the prediction assumes the "
                        "default entry is a normal (non-recovery) Linux entry")
    if args is None:
        summary = f"{head}; the boot parameters are unknown: {unknown[0] if unknown else problems[0]}"
    else:
        summary = f"{head} (root=<device> ro excluded: written from the disk it is installed on)"
    return Prediction(generator=generator, loader="grub2", config_path=cfg, kernel=kernel, args=args,
                      summary=summary, note=f"predicted: {cfg} not generated yet", evidence=tuple(evidence),
                      problems=tuple(unknown + problems))


def _bls_system(reader: Reader, family: str | None, env: dict[str, grub.ShellVar]) -> bool:
    enable = env.get("GRUB_ENABLE_BLSCFG")
    if enable is not None:
        return enable.value.strip().lower() == "true"
    return reader.is_file(KERNEL_CMDLINE) or reader.is_file(USR_KERNEL_CMDLINE) or (
        family == "rhel" and reader.fs.kind("/usr/lib/kernel/install.d") == "dir")


def predict_kernel_install(reader: Reader) -> Prediction:
    """What kernel-install will write into the BLS entry of the next kernel installed."""
    for path in (KERNEL_CMDLINE, USR_KERNEL_CMDLINE):
        text = reader.text(path)
        if text is not None:
            args = grub.parse_kernel_cmdline_file(text)
            return Prediction(
                generator="kernel-install", loader="grub2-bls", config_path="/boot/loader/entries", kernel=None,
                args=args,
                summary=f"predicted: no BLS entry yet; kernel-install will write the options from {path}",
                note="predicted: no BLS entry yet",
                evidence=(Evidence(source=path, observed=f"options {args} (kernel-install writes them into each new "
                                   "BLS entry)"),))
    return Prediction(
        generator="kernel-install", loader="grub2-bls", config_path="/boot/loader/entries", kernel=None, args=None,
        note="predicted: no BLS entry yet",
        summary=f"predicted: no BLS entry yet, and neither {KERNEL_CMDLINE} nor {USR_KERNEL_CMDLINE}: kernel-install "
                "will copy the /proc/cmdline of whatever system runs it (in a pipeline, the build host); the boot "
                "parameters are unknown",
        problems=(f"write the wanted parameters to {KERNEL_CMDLINE} so kernel-install does not copy the build "
                  "host's command line",))


def predict_next_boot(reader: Reader) -> Prediction | None:
    """The default entry an image's generator will write, when the image has generator inputs and
    no generated configuration (the caller knows the latter); None when it has no input either."""
    family = distro_family(reader)
    env, _, _ = read_grub_defaults(reader, family) if reader.is_file(DEFAULT_GRUB) else ({}, [], [])
    if family == "rhel" and _bls_system(reader, family, env):
        return predict_kernel_install(reader)
    grub = predict_grub(reader, family)
    if grub is not None:
        return grub
    if reader.is_file(KERNEL_CMDLINE) or reader.is_file(USR_KERNEL_CMDLINE):
        return predict_kernel_install(reader)
    return None


def kernelopts_prediction(reader: Reader) -> tuple[str, list[Evidence]] | None:
    """RHEL 8: what ``grub2-mkconfig`` will store in ``kernelopts`` (after ``root=<device> ro``) for
    entries that say ``options $kernelopts`` when no grubenv or grub.cfg defines it yet; None when
    the inputs do not say or cannot be known."""
    family = distro_family(reader)
    env, _, unknown = read_grub_defaults(reader, family)
    if unknown or "GRUB_CMDLINE_LINUX" not in env:
        return None
    args = " ".join(grub_args(env).split())
    return args, _variable_evidence(env, "grub2-mkconfig stores it in kernelopts")

