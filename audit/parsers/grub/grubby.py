"""The BLS tooling's inputs and outputs: ``/etc/kernel/cmdline`` (kernel-install) and
``grubby --default-index`` output.
"""

from __future__ import annotations

import re

from audit.errors import ParseError

# -- /etc/kernel/cmdline and grubby ---------------------------------------------------------------------


def parse_kernel_cmdline_file(text: str) -> str:
    """``/etc/kernel/cmdline``: kernel-install squeezes blanks and newlines into single spaces."""
    return " ".join(text.split())


def parse_grubby_default_index(text: str) -> tuple[int, tuple[str, ...]]:
    """``grubby --default-index`` output: the last line that is a number is the index; other lines
    are noise that grubby, bash or grub2-editenv printed on the same stream (returned as such).
    Raises ParseError when no line is a number."""
    index: int | None = None
    noise: list[str] = []
    for line in text.splitlines():
        s = line.strip()
        if re.fullmatch(r"-?\d+", s):
            if index is not None:
                noise.append(str(index))
            index = int(s)
        elif s:
            noise.append(s)
    if index is None:
        raise ParseError("no default index in grubby output" + (f" ({noise[-1][:60]})" if noise else ""))
    return index, tuple(noise)
