"""The BLS tooling's inputs and outputs: ``/etc/kernel/cmdline`` (kernel-install) and
``grubby --default-index`` output.
"""

from __future__ import annotations

import re

from audit.errors import ParseError
from audit.parsers.grub.limits import GrubLimitError, iter_lines

#: ``/etc/kernel/cmdline`` ends up on the kernel command line, which every architecture limits to a
#: few KiB (COMMAND_LINE_SIZE); a larger file is not a command line.
MAX_KERNEL_CMDLINE = 64 << 10
_BLANKS = re.compile(r"\s+")
_INDEX = re.compile(r"-?\d+")

# -- /etc/kernel/cmdline and grubby ---------------------------------------------------------------------


def parse_kernel_cmdline_file(text: str) -> str:
    """``/etc/kernel/cmdline``: kernel-install squeezes blanks and newlines into single spaces.
    Raises GrubLimitError naming the file when it is larger than ``MAX_KERNEL_CMDLINE``."""
    if len(text) > MAX_KERNEL_CMDLINE:
        raise GrubLimitError(
            f"{len(text)} characters: more than the {MAX_KERNEL_CMDLINE} a kernel command line can use",
            source="/etc/kernel/cmdline",
        )
    return _BLANKS.sub(" ", text).strip()


def parse_grubby_default_index(text: str) -> tuple[int, tuple[str, ...]]:
    """``grubby --default-index`` output: the last line that is a number is the index; other lines
    are noise that grubby, bash or grub2-editenv printed on the same stream (returned as such).
    Raises ParseError when no line is a number."""
    index: int | None = None
    noise: list[str] = []
    for _, line in iter_lines(text):
        s = line.strip()
        if _INDEX.fullmatch(s):
            if index is not None:
                noise.append(str(index))
            index = int(s)
        elif s:
            noise.append(s)
    if index is None:
        raise ParseError("no default index in grubby output" + (f" ({noise[-1][:60]})" if noise else ""))
    return index, tuple(noise)
