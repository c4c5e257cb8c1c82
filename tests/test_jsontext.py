"""reports.jsontext.dumps writes what json.dumps writes with indent, byte for byte."""

from __future__ import annotations

import enum
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports.jsontext import dumps

_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
            | st.text() | st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF,
                                                          blacklist_categories=())))
_values = st.recursive(
    _scalars,
    lambda inner: (st.lists(inner, max_size=6) | st.lists(st.text(max_size=8), max_size=6).map(tuple)
                   | st.dictionaries(st.text(max_size=8), inner, max_size=6)),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(_values, st.sampled_from([0, 1, 2, 4]), st.booleans(), st.booleans())
def test_the_text_is_json_dumps_text(value, indent, sort_keys, ensure_ascii):
    assert dumps(value, indent=indent, sort_keys=sort_keys, ensure_ascii=ensure_ascii) == json.dumps(
        value, indent=indent, sort_keys=sort_keys, ensure_ascii=ensure_ascii)


class Level(enum.IntEnum):
    HIGH = 3


def test_what_it_does_not_handle_is_json_dumps_own():
    odd = {1: "a", None: [1.5, float("nan")], "s": Level.HIGH}
    assert dumps(odd, indent=2) == json.dumps(odd, indent=2)
    with pytest.raises(TypeError):
        dumps({"a": object()})
    with pytest.raises(TypeError):
        dumps({1: 1, "a": 2}, sort_keys=True)  # keys json cannot order
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular"):
        dumps(loop)
    deep: list = []
    for _ in range(250):  # deeper than MAX_DEPTH: handed over
        deep = [deep, 1]
    assert dumps(deep) == json.dumps(deep, indent=2)
    assert dumps(math.inf) == "Infinity" and dumps([]) == "[]" and dumps({}) == "{}"


def test_a_real_report_is_written_the_same(tmp_path):
    from audit.engine import exit_code, run_audit
    from audit.host.snapshot import host_from_snapshot, parse_snapshot
    from audit.plugins import make_plugins
    from reports.document import report_dict
    from tests.test_fleet_cache import _hosts

    for name, blob in _hosts(tmp_path)[:3]:
        report = run_audit(make_plugins(entry_points=False), host_from_snapshot(parse_snapshot(blob), name=name))
        doc = report_dict(report, exit_code=int(exit_code(report)))
        assert dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) == json.dumps(
            doc, indent=2, sort_keys=True, ensure_ascii=False)
