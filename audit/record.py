"""``Record``: ``typing.NamedTuple`` without its start-up cost.

``class Point(Record): x: int; y: int = 0`` makes the class ``typing.NamedTuple`` makes: a tuple
subclass with a property per field, ``_fields``, ``_field_defaults``, ``_make``, ``_replace``,
``_asdict``, the same ``repr`` and pickling, plus the class body's methods, properties, docstring
and defaults; type checkers see ``NamedTuple`` itself. Instances are made exactly as fast.

What it leaves out is the cost of defining one: some 150 µs a class on the development VM, for
the ~150 classes a run defines (issue #11). ``typing`` checks each field's annotation (with ``from
__future__ import annotations`` a string, compiled into a ``ForwardRef``), and
``collections.namedtuple`` compiles a new ``__new__`` from source for every class. Here the
annotations are kept as they are, and ``__new__`` is compiled once per number of fields and given
each class's field names (a code object's argument names are only names: ``CodeType.replace``).
``tests/test_record.py`` holds it to ``typing.NamedTuple``'s behaviour.
"""

from __future__ import annotations

from types import CodeType, FunctionType
from typing import TYPE_CHECKING, Any

try:  # the field property namedtuple uses (C), else what namedtuple falls back to
    from _collections import _tuplegetter
except ImportError:  # pragma: no cover
    from operator import itemgetter

    def _tuplegetter(index: int, doc: str) -> Any:
        return property(itemgetter(index), doc=doc)

# what typing.NamedTuple also refuses in a class body, or keeps from it
_PROHIBITED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields", "_field_defaults",
                         "_make", "_replace", "_asdict", "_source"})
_SPECIAL = frozenset({"__module__", "__name__", "__annotations__"})
_NEW_CODE: dict[int, CodeType] = {}
_NEW_GLOBALS = {"_tuple_new": tuple.__new__, "__builtins__": {}}


def _new_code(arity: int) -> CodeType:
    """``lambda _cls, _0, _1, ...: _tuple_new(_cls, (_0, _1, ...))``: namedtuple's ``__new__``."""
    code = _NEW_CODE.get(arity)
    if code is None:
        args = ", ".join(f"_{i}" for i in range(arity))
        source = f"lambda _cls{', ' if arity else ''}{args}: _tuple_new(_cls, ({args}{',' if arity == 1 else ''}))"
        code = _NEW_CODE[arity] = eval(source, dict(_NEW_GLOBALS)).__code__  # a fixed template, no data
    return code


@classmethod  # type: ignore[misc]
def _make(cls: Any, iterable: Any) -> Any:
    """Make a new instance from a sequence or iterable."""
    result = tuple.__new__(cls, iterable)
    if len(result) != len(cls._fields):
        raise TypeError(f"Expected {len(cls._fields)} arguments, got {len(result)}")
    return result


def _replace(self: Any, /, **kwds: Any) -> Any:
    """Return a new instance replacing specified fields with new values."""
    result = self._make(map(kwds.pop, self._fields, self))
    if kwds:
        raise ValueError(f"Got unexpected field names: {list(kwds)!r}")
    return result


def _repr(self: Any) -> str:
    """Return a nicely formatted representation string."""
    fields = ", ".join(f"{name}={value!r}" for name, value in zip(self._fields, self, strict=True))
    return f"{type(self).__name__}({fields})"


def _asdict(self: Any) -> dict[str, Any]:
    """Return a new dict which maps field names to their values."""
    return dict(zip(self._fields, self, strict=True))


def _getnewargs(self: Any) -> tuple[Any, ...]:
    """Return self as a plain tuple. Used by copy and pickle."""
    return tuple(self)


def _record_class(typename: str, fields: tuple[str, ...], defaults: tuple[Any, ...], module: str) -> type:
    for name in fields:
        if name.startswith("_"):
            raise ValueError(f"Field names cannot start with an underscore: {name!r}")
    code = _new_code(len(fields)).replace(co_varnames=("_cls", *fields), co_name="__new__",
                                          co_qualname=f"{typename}.__new__")
    new = FunctionType(code, dict(_NEW_GLOBALS), "__new__", defaults or None)
    new.__doc__ = f"Create new instance of {typename}({', '.join(fields)})"
    namespace: dict[str, Any] = {
        "__doc__": f"{typename}({', '.join(fields)})",
        "__slots__": (),
        "_fields": fields,
        "_field_defaults": dict(zip(fields[len(fields) - len(defaults):], defaults, strict=True)),
        "__new__": new,
        "_make": _make,
        "_replace": _replace,
        "__repr__": _repr,
        "_asdict": _asdict,
        "__getnewargs__": _getnewargs,
        "__match_args__": fields,
        "__module__": module,
    }
    for index, name in enumerate(fields):
        namespace[name] = _tuplegetter(index, f"Alias for field number {index}")
    return type(typename, (tuple,), namespace)


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
        cls = _record_class(typename, tuple(annotations), tuple(defaults), ns.get("__module__", "__main__"))
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
