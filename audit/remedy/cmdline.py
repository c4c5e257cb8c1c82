"""Kernel command line changes for every future boot, with the tool the target's boot configuration is
managed by (grubby, /etc/default/grub and its generator, legacy grub.conf, systemd-boot entries).

Setting a parameter replaces it, never adds a second copy: every parameter a fix sets (and every one
it removes) is first taken off wherever the generator's inputs hold it (/etc/default/grub and the
grub.d snippets, hostaudit's own included), then written once: on the Debian family into a grub.d
snippet of its own (``90-hostaudit-<topic>.cfg``, written whole), elsewhere as one marked line of
/etc/default/grub that is replaced, not repeated. A live host's configuration is then regenerated
(the fix script runs the generator once, after every change to its inputs). An image has no /proc
or /dev for the generator: when it already has a generated grub.cfg, the same edit is made to that
file's kernel lines in place; when it has none, the generator writes the inputs when the image is
installed, and nothing is regenerated.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence

from audit.boot.model import DEFAULT_GRUB, DEFAULT_GRUB_D
from audit.remedy.target import FixTarget

Params = Mapping[str, str | None] | Sequence[tuple[str, str | None]]

#: The generators that rewrite a GRUB 2 configuration from its inputs.
REGENERATORS = ("update-grub", "grub-mkconfig", "grub2-mkconfig")
#: Lines that pass parameters to the kernel: GRUB 2 (``linux``, ``linux16``, ``linuxefi``), legacy GRUB.
GRUB2_KERNEL_LINES = "/^[[:space:]]*linux(16|efi)?[[:space:]]/"
LEGACY_KERNEL_LINES = "/^[[:space:]]*kernel[[:space:]]/"
DEFAULTS_LINES = "/GRUB_CMDLINE_LINUX/"
_QUOTES = '"\\x27'  # both quotes, for a sed bracket expression (\x27: GNU sed, keeps the script single-quoted)


def is_regeneration(command: str) -> bool:
    """Whether ``command`` rewrites the boot configuration from its inputs (run once, after them all)."""
    words = command.split()
    return bool(words) and words[0] in REGENERATORS


def regen_command(hint: str | None, config_path: str | None = None) -> str:
    """The command that regenerates a GRUB 2 configuration, from the resolver's hint. The hint
    carries a path found in the audited root, so it is rebuilt with the path quoted, never pasted."""
    words = (hint or "").split(" -o ", 1)
    tool = words[0].strip()
    if tool in ("grub2-mkconfig", "grub-mkconfig"):
        path = words[1] if len(words) == 2 else (config_path or "/boot/grub2/grub.cfg")
        return f"{tool} -o {shlex.quote(path)}"
    if tool == "update-grub":
        return "update-grub"
    return "grub2-mkconfig -o " + shlex.quote(config_path or "/boot/grub2/grub.cfg")


def _uses_grubby(target: FixTarget) -> bool:
    return (target.loader == "grub2-bls" or "grubby" in target.family_hint
            or (target.family == "rhel" and target.loader in ("grub2", "grub-legacy", None)))


def _mkconfig_family(target: FixTarget) -> bool:
    return target.loader == "grub2" or (target.loader is None and target.family in ("debian", "suse"))


def _name_ere(names: Iterable[str]) -> str:
    """Parameter names as one sed ERE group; the kernel reads ``-`` and ``_`` in a name alike."""
    def one(name: str) -> str:
        return "".join("[-_]" if c in "-_" else f"[{c}]" if c in ".[]()*+?{}|^$\\/" else c for c in name)
    return "(" + "|".join(one(n) for n in sorted(set(names))) + ")"


def strip_expressions(names: Iterable[str]) -> list[str]:
    """sed -E arguments that take every token named one of ``names`` (bare or ``name=value``) off the
    addressed lines, with the blank before it (or after it, right after a quote), looping until none
    is left: a second run finds nothing to take off."""
    n = _name_ere(names)
    value = f"(=[^[:space:]{_QUOTES}]*)?"
    after_blank = f"s/[[:space:]]+{n}{value}([[:space:]{_QUOTES}]|$)/\\3/"
    after_quote = f"s/([{_QUOTES}]){n}{value}([[:space:]]+|([{_QUOTES}]))/\\1\\5/"
    return ["-e", ":a", "-e", shlex.quote(after_blank), "-e", "ta", "-e", shlex.quote(after_quote), "-e", "ta"]


def _sed_replacement(text: str) -> str:
    return text.replace("\\", "\\\\").replace("/", "\\/").replace("&", "\\&")


def edit_lines(address: str, paths: Sequence[str], *, strip: Iterable[str] = (), append: str = "",
               delete: str | None = None) -> str:
    """One ``sed -i`` over ``paths`` (already shell words): on the lines ``address`` selects, take the
    parameters ``strip`` off, then put ``append`` at the end; ``delete``: a line regex to drop first."""
    words = ["sed", "-i", "-E"]
    if delete:
        words += ["-e", shlex.quote(f"/{delete}/d")]
    words += ["-e", shlex.quote(address + "{")]
    names = list(strip)
    if names:
        words += strip_expressions(names)
    if append:  # trailing blanks first: "ro single " would otherwise grow a blank on the first run only
        words += ["-e", shlex.quote("s/[[:space:]]+$//"), "-e", shlex.quote(f"s/$/ {_sed_replacement(append)}/")]
    words += ["-e", "'}'", *paths]
    return " ".join(words)


def _token(name: str, value: str | None) -> str:
    return name if value is None else f"{name}={value}"


def _in_place(target: FixTarget, strip: Sequence[str], append: str) -> list[str]:
    """The generated configuration of an image brought to what its inputs now ask for, by editing
    its kernel lines (the generator needs /proc and /dev, which the image does not have here)."""
    path = target.config_path or "/boot/grub/grub.cfg"
    what = f"takes {' '.join(strip)} off" + (f" and adds {append}" if append else "")
    return [f"# {path}: edited in place, as its generator would write it: update-grub needs /proc and /dev, "
            f"which a script run from outside the image does not have; every kernel line {what}",
            edit_lines(GRUB2_KERNEL_LINES, [target.path(path)], strip=strip, append=append)]


NOT_GENERATED = ("# the boot configuration is not generated yet: its generator writes these inputs into it when "
                 "the image is installed (nothing to regenerate)")


def _regenerate_mkconfig(target: FixTarget, strip: Sequence[str], append: str) -> list[str]:
    if not target.image:
        regen = "update-grub" if target.family == "debian" else regen_command(target.family_hint, target.config_path)
        return [regen]
    if not target.generated:
        return [NOT_GENERATED]
    return _in_place(target, strip, append)


def regenerate(target: FixTarget, missing: Sequence[str]) -> list[str]:
    """Commands that bring the boot configuration in line with its inputs; ``missing`` holds the
    parameters (``name=value``) the inputs ask for and the default entry lacks."""
    if target.family_hint == "grubby" or target.loader == "grub2-bls":
        # grub2-mkconfig does not rewrite BLS options: put exactly the missing parameters in with grubby
        return [target.inside("grubby --update-kernel=ALL --args=" + shlex.quote(" ".join(missing)))]
    if target.image:
        if not target.generated:
            return [NOT_GENERATED]
        names = list(dict.fromkeys(t.split("=", 1)[0] for t in missing))
        return _in_place(target, names, " ".join(missing)) if missing else []
    if not target.family_hint:
        return ["# regenerate the boot loader configuration from /etc/default/grub"]
    return [regen_command(target.family_hint, target.config_path)]


def _topic(pairs: Sequence[tuple[str, str | None]], remove: Sequence[str]) -> str:
    first = pairs[0][0] if pairs else remove[0]
    return "".join(c if c.isalnum() else "-" for c in first.lower())


#: What a kernel parameter written into a GRUB defaults file may hold: that file is sourced as shell by
#: grub-mkconfig, inside double quotes, where "$(...)", backquotes, '"' and '\\' would be acted on.
_SAFE_TOKEN = re.compile(r"[A-Za-z0-9_.,:=/+@%~-]+")


def _grub_defaults(target: FixTarget, tokens: str, names: list[str], topic: str) -> list[str]:
    """The parameters in the GRUB defaults: taken off where the inputs hold them, then written once."""
    if not all(_SAFE_TOKEN.fullmatch(t) for t in tokens.split()):
        return ["# not written: a parameter holds characters grub-mkconfig's shell would act on; "
                "edit the GRUB defaults by hand"]
    files = target.files_with(names)
    line = f'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX {tokens}"'
    if target.family == "debian":
        cmds = [edit_lines(DEFAULTS_LINES, [target.path(f) for f in files], strip=names)] if files else []
        if tokens:
            snippet = f"{DEFAULT_GRUB_D}/90-hostaudit-{topic}.cfg"
            cmds += [f"mkdir -p {target.path(DEFAULT_GRUB_D)}", f"echo {shlex.quote(line)} > {target.path(snippet)}"]
        return cmds
    # no grub.d outside the Debian family: one marked line of /etc/default/grub, replaced on every run
    marker = f"# hostaudit:{topic}"
    paths = [target.path(f) for f in dict.fromkeys([*files, DEFAULT_GRUB])]
    cmds = [edit_lines(DEFAULTS_LINES, paths, strip=names, delete=f"{marker}$")]
    if tokens:
        cmds.append(f"echo {shlex.quote(f'{line}   {marker}')} >> {target.path(DEFAULT_GRUB)}")
    return cmds


def kernel_params(target: FixTarget, *, add: Params | None = None, remove: Sequence[str] = (),
                  topic: str | None = None) -> list[str]:
    """Commands that put ``add`` on (and take ``remove`` off) the kernel command line of every
    future boot, with the tool the target's boot configuration is managed by. Values are quoted.
    ``add`` may be a sequence of pairs where order or repetition matters (hugepagesz=/hugepages=).
    Every name in ``add`` is taken off first, so running the commands again changes nothing.
    ``topic`` names hostaudit's grub.d snippet (default: the first parameter's name)."""
    pairs = list(add.items()) if isinstance(add, Mapping) else list(add or ())
    if not pairs and not remove:
        return []
    tokens = " ".join(_token(k, v) for k, v in pairs)
    names = list(dict.fromkeys([*remove, *(k for k, _ in pairs)]))
    removed = " ".join(remove)
    if _uses_grubby(target):
        if target.image and not target.generated:
            return [_advice(tokens, removed, "/etc/kernel/cmdline: kernel-install writes it into the entry of every"
                                              " kernel installed later")]
        cmds = [target.inside(f"grubby --update-kernel=ALL --remove-args={shlex.quote(' '.join(names))}")]
        if pairs:
            cmds.append(target.inside(f"grubby --update-kernel=ALL --args={shlex.quote(tokens)}"))
        return cmds
    if target.loader == "grub-legacy":
        path = target.config_path or "/boot/grub/grub.conf"
        return [edit_lines(LEGACY_KERNEL_LINES, [target.path(path)], strip=names, append=tokens)]
    if target.loader == "systemd-boot":
        return [_advice(tokens, removed,
                        "/etc/kernel/cmdline and to the options line of each $ESP/loader/entries/*.conf")]
    if _mkconfig_family(target):
        topic = topic or _topic(pairs, remove)
        return [*_grub_defaults(target, tokens, names, topic), *_regenerate_mkconfig(target, names, tokens)]
    return [_advice(tokens, removed, "the kernel command line in your boot loader's configuration")]


def _advice(tokens: str, removed: str, where: str) -> str:
    """A comment for a boot configuration hostaudit does not edit: what to add to and take off ``where``."""
    if not tokens:
        return f"# remove {removed} from {where}"
    return f"# add '{tokens}' to {where}" + (f"; remove {removed}" if removed else "")
