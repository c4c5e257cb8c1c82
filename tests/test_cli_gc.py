"""The collector in a ``hostaudit`` process (``audit.cli.main.entry``): off during start-up, on for
the audit, off again once a command only makes its output from what it read; never touched when
``main()`` runs in-process, as here."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from audit.cli import options


def test_finishing_leaves_an_in_process_collector_alone() -> None:
    assert gc.isenabled()
    options.finishing()
    assert gc.isenabled()


def test_finishing_turns_the_collector_off_in_a_short_lived_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(options, "_short_lived", True)
    try:
        options.finishing()
        assert not gc.isenabled()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.enable()


def test_the_command_marks_its_process_short_lived() -> None:
    code = ("import gc, sys\n"
            "from audit.cli import main, options\n"
            "sys.argv = ['hostaudit', '--version']\n"
            "try:\n"
            "    main.entry()\n"
            "except SystemExit:\n"
            "    pass\n"
            "print(options._short_lived)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "True"
