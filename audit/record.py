"""``Record``: ``typing.NamedTuple`` without its start-up cost.

``class Point(Record): x: int; y: int = 0`` makes the same class ``typing.NamedTuple`` makes (a
``collections.namedtuple`` with the class body's methods, properties, docstring and defaults), and
type checkers see ``NamedTuple`` itself. What it leaves out is ``typing``'s check of each field's
annotation: with ``from __future__ import annotations`` every annotation is a string, which
``typing`` compiles into a ``ForwardRef`` one by one. For the ~150 record types a run imports that
was some 25 ms of every start (issue #11); the annotations are kept, unevaluated, in
``__annotations__``.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any

# what typing.NamedTuple also refuses in a class body, or keeps from it
_PROHIBITED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields", "_field_defaults",
                         "_make", "_replace", "_asdict", "_source"})
_SPECIAL = frozenset({"__module__", "__name__", "__annotations__"})


class _RecordMeta(type):
    def __new__(mcs, typename: str, bases: tuple[type, ...], ns: dict[str, Any]) -> Any:
        if not bases:  # Record itself
            return super().__new__(mcs, typename, bases, ns)
        if bases != (Record,):
            raise TypeError("a Record class takes no other base classes")
        annotations: dict[str, Any] = ns.get("__annotations__", {})
        defaults = []
        for name in annotations:
            if name in ns:
                defaults.append(ns[name])
            elif defaults:
                raise TypeError(f"field {name!r} without a default follows a field with one in {typename}")
        cls = collections.namedtuple(typename, list(annotations), defaults=defaults, module=ns["__module__"])
        cls.__annotations__ = dict(annotations)
        for key, value in ns.items():
            if key in _PROHIBITED:
                raise AttributeError(f"cannot overwrite NamedTuple attribute {key}")
            if key not in _SPECIAL and key not in annotations:
                setattr(cls, key, value)
        return cls


if TYPE_CHECKING:
    from typing import NamedTuple as Record
else:
    class Record(metaclass=_RecordMeta):
        """Base of a record class (see the module's docstring)."""
