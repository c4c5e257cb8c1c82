"""Untrusted XML (libvirt's domain, domcapabilities and capabilities documents) read with bounds.

At most ``max_bytes``, UTF-8 only (the document's own encoding declaration is not trusted), no
DOCTYPE (so no entity is declared, expanded or fetched), at most ``max_depth`` levels and
``max_elements`` elements, counted while expat reads: nothing larger is ever built.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.parsers import expat


class XmlRefused(ValueError):
    """Why a document is not read, without the file's name (the caller adds it)."""


class _Stop(Exception):
    pass


def bounded_tree(blob: bytes, *, max_bytes: int, max_depth: int, max_elements: int,
                 doctype_note: str) -> ET.Element:
    """The element tree of ``blob``; XmlRefused says why not. ``doctype_note``: why a DOCTYPE is
    out of place in this kind of document ("libvirt never writes one")."""
    if len(blob) > max_bytes:
        raise XmlRefused(f"{len(blob)} bytes, larger than the {max_bytes}-byte limit")
    try:
        blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise XmlRefused(f"not UTF-8 (byte {exc.start})") from None
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(encoding="UTF-8")
    depth = count = 0

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal depth, count
        depth += 1
        count += 1
        if depth > max_depth:
            raise _Stop(f"nested deeper than {max_depth} elements")
        if count > max_elements:
            raise _Stop(f"more than {max_elements} elements")
        builder.start(tag, attrs)

    def end(tag: str) -> None:
        nonlocal depth
        depth -= 1
        builder.end(tag)

    def doctype(*_: object) -> None:
        raise _Stop(f"it has a DOCTYPE ({doctype_note}; entities are not expanded)")

    def entity(*_: object) -> None:
        raise _Stop("it declares entities")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity
    parser.UnparsedEntityDeclHandler = entity
    parser.ExternalEntityRefHandler = entity
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        parser.Parse(blob, True)
    except _Stop as exc:
        raise XmlRefused(f"refused: {exc}") from None
    except expat.ExpatError as exc:
        raise XmlRefused(f"line {exc.lineno}: not well-formed XML ({expat.ErrorString(exc.code)})") from None
    except RecursionError:  # max_depth stops this first
        raise XmlRefused("refused: nested too deep") from None
    return builder.close()
