"""``hostaudit policy show``: the effective policy as TOML."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from audit.cli.options import Parser, add_policy_options, load_policy


def register(sub: Any) -> None:
    policy = sub.add_parser("policy", help="show the effective policy")
    policy_sub = policy.add_subparsers(dest="policy_command", parser_class=Parser, required=True)
    show = policy_sub.add_parser("show", help="print the effective policy as TOML")
    add_policy_options(show)
    show.set_defaults(func=cmd_policy_show)


def cmd_policy_show(args: argparse.Namespace) -> int:
    from audit.policy import to_toml

    sys.stdout.write(to_toml(load_policy(args)))
    return 0


