"""audit.record.Record against typing.NamedTuple: the same class, only cheaper to define."""

from __future__ import annotations

import copy
import pickle
from typing import NamedTuple

import pytest

from audit.record import Record


class RPoint(Record):
    """A point."""

    x: int
    y: int = 0
    label: str | None = None

    @property
    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)

    def moved(self, dx: int) -> RPoint:
        return self._replace(x=self.x + dx)


class NPoint(NamedTuple):
    """A point."""

    x: int
    y: int = 0
    label: str | None = None

    @property
    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)

    def moved(self, dx: int) -> NPoint:
        return self._replace(x=self.x + dx)


class Empty(Record):
    pass


class One(Record):
    value: str


@pytest.mark.parametrize("cls", [RPoint, NPoint])
def test_behaves_as_a_named_tuple(cls):
    p = cls(3, -4)
    assert p == (3, -4, None) and isinstance(p, tuple)
    assert (p.x, p.y, p.label, p.norm1) == (3, -4, None, 7)
    assert cls(x=1, label="a") == (1, 0, "a")
    assert p.moved(2) == cls(5, -4)
    assert p._asdict() == {"x": 3, "y": -4, "label": None}
    assert cls._make([1, 2, "z"]) == cls(1, 2, "z")
    assert cls._fields == ("x", "y", "label")
    assert cls._field_defaults == {"y": 0, "label": None}
    assert cls.__match_args__ == ("x", "y", "label")
    assert cls.__doc__ == "A point."
    assert repr(p) == f"{cls.__name__}(x=3, y=-4, label=None)"
    assert pickle.loads(pickle.dumps(p)) == p and type(pickle.loads(pickle.dumps(p))) is cls
    assert copy.deepcopy(p) == p and copy.copy(p) is not None
    assert not hasattr(p, "__dict__")
    with pytest.raises(AttributeError):
        p.x = 1
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'x'"):
        cls()
    with pytest.raises(TypeError):
        cls(1, 2, 3, 4)
    with pytest.raises(TypeError, match="Expected 3 arguments, got 1"):
        cls._make([1])
    with pytest.raises(ValueError, match="unexpected field names"):
        p._replace(z=1)
    match p:
        case cls(x, y):
            assert (x, y) == (3, -4)
    assert list(cls.__annotations__) == ["x", "y", "label"]
    assert RPoint.__annotations__ == {"x": "int", "y": "int", "label": "str | None"}  # kept, not evaluated


def test_zero_and_one_field():
    assert Empty() == () and repr(Empty()) == "Empty()"
    assert One("a") == ("a",) and One(value="b").value == "b" and repr(One("a")) == "One(value='a')"


def test_refuses_what_named_tuple_refuses():
    with pytest.raises(TypeError, match="without a default follows"):
        class Bad(Record):
            a: int = 1
            b: int
    with pytest.raises(AttributeError, match="_make"):
        class Bad2(Record):
            a: int

            def _make(self):
                return None
    with pytest.raises(ValueError, match="underscore"):
        class Bad3(Record):
            _a: int
    with pytest.raises(TypeError, match="no other base"):
        class Bad4(Record, dict):
            a: int


def test_nested_classes_pickle_by_qualified_name():
    p = Holder.Inner(1)
    assert Holder.Inner.__qualname__ == "Holder.Inner"
    assert pickle.loads(pickle.dumps(p)) == p


class Holder:
    class Inner(Record):
        a: int
