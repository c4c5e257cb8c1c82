"""hostaudit: a compliance auditor for KVM virtualization hosts."""

import pluggy

__version__ = "0.1.0"

#: The one marker plugins use: ``from audit import hookimpl``.
hookimpl = pluggy.HookimplMarker("hostaudit")
