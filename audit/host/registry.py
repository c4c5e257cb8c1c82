"""The fact registry: ``@fact(paths=...)`` declares a function of the host and the paths it reads.

The declared paths are what a snapshot must capture, so a plugin's own facts travel too. This
module sits under the ``Host`` class: it names no host type, only the ``HostReader`` protocol that
the facts a ``Host`` exposes as properties (``audit.host.kernel``) are written against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from audit.errors import FactError, ParseError
from audit.host.fs import FileSource, Kind
from audit.model import TargetMode
from audit.record import Record

T = TypeVar("T")
H = TypeVar("H")


class FactSpec(Record):
    name: str
    # inside the root; "{release}" is the kernel release; "/x/*" lists a dir; a leading "?" means
    # only where it is and what kind (snapshots then carry no content for it: a kernel image, a tool)
    paths: tuple[str, ...]
    runtime: bool  # comes from a running kernel (/proc, /sys, /dev)


#: Every declared fact, in declaration order (built-ins and plugins alike).
FACTS: dict[str, FactSpec] = {}


def fact(*, paths: Sequence[str], runtime: bool = False) -> Callable[[Callable[[H], T]], Callable[[H], T]]:
    """Declare a fact function and the paths it reads."""

    def wrap(fn: Callable[[H], T]) -> Callable[[H], T]:
        name = f"{fn.__module__}.{fn.__qualname__}"
        FACTS[name] = FactSpec(name=name, paths=tuple(paths), runtime=runtime)
        fn.__fact__ = FACTS[name]  # type: ignore[attr-defined]
        return fn

    return wrap


class HostReader(Protocol):
    """What a fact may ask of the host it is given: ``audit.host.core.Host`` is one."""

    fs: FileSource
    mode: TargetMode
    root: str

    def fact(self, fn: Callable[[Any], T]) -> T: ...
    @property
    def has_runtime(self) -> bool: ...
    def read_bytes(self, path: str, *, limit: int = ...) -> bytes: ...
    def read_text(self, path: str, *, limit: int = ...) -> str: ...
    def read_runtime(self, path: str) -> str: ...
    def parse(self, path: str, parser: Callable[[str], T], *, runtime: bool = False) -> T: ...
    def kind(self, path: str, *, follow: bool = True) -> Kind | None: ...
    def listdir(self, path: str) -> list[str]: ...
    def readlink(self, path: str) -> str | None: ...


def parse_text(source: str, text: str, parser: Callable[[str], T]) -> T:
    try:
        return parser(text)
    except ParseError as exc:
        raise FactError(source, exc.problem, line=exc.line) from None
    except (ValueError, IndexError, KeyError) as exc:  # a parser bug on odd input is still an error
        raise FactError(source, f"could not parse: {exc}") from None
