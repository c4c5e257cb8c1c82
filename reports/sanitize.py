"""Where text from the audited host becomes output text: one function per output context, each with
its rule, used by every reporter. Host data is shown, never interpreted: it can neither become markup,
syntax or a command nor hide or reorder what is around it (control characters, bidi overrides).

Every function starts from the same two rules: a lone surrogate (a byte that was not UTF-8 in a host
file, decoded with surrogateescape) is shown as the byte it stands for (``\\xff``), since no encoder
writes it; and, where a person reads the text, control characters are shown as ``\\xNN`` escapes
(``printable``). The table of contexts:

========================  ===================  ====================================================
context                   function             rule
========================  ===================  ====================================================
terminal, plain text      ``printable``        controls, bidi controls, surrogates shown as escapes
JSON (a whole document)   ``sanitize_tree``    exact data; only surrogates shown (json escapes rest)
SARIF, code quality       ``display_text``,    printable strings inside JSON, for tools that show
                          ``display_tree``     them to people
SARIF ``message.text``    ``sarif_message``    ``display_text``; ``[ ]`` escaped, ``{ }`` doubled
file URIs (SARIF)         ``uri_path``         percent-encoded bytes
XML text, attributes      ``xml_text``         printable, and what XML 1.0 forbids shown
XML spliced by hand       ``xml_markup``       ``xml_text``, then ``& < > " '`` as entities
XML comment               ``xml_comment_text`` no ``--``, no final ``-``
CDATA section             ``cdata_section``    ``]]>`` split across two sections
HTML (jinja ``show``)     ``html_text``        printable, noncharacters shown, ``& < > " '``
shell word                ``shell_word``       one word, exact bytes, single-quoted, ``$'\\xNN'``
                          ``shell_hint``       the same, for a message (a NUL shown, not refused)
shell comment line        ``shell_comment``    ``# `` and one printable line
Prometheus label value    ``prom_label_value`` printable, then ``\\``, ``"``, newline escaped
========================  ===================  ====================================================
"""

from __future__ import annotations

import re
from typing import Any

#: What a person must see rather than have interpreted: C0 and C1 controls (but tab and newline,
#: which ``printable`` handles itself), DEL, the line and paragraph separators, the bidi embeddings,
#: overrides, isolates and marks ("Trojan Source", CVE-2021-42574) and lone surrogates.
_CONTROL_CHARS = r"\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_CONTROL = re.compile(f"[{_CONTROL_CHARS}]")
#: Lone surrogates: bytes that were not UTF-8 in a host file (decoded with surrogateescape), which
#: no encoder writes; shown as the byte they stand for (\xff), never written raw.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _escape(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the original byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _unicode_escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


# -- plain text, JSON ---------------------------------------------------------------------------------


def no_surrogates(text: str) -> str:
    """``text`` with every lone surrogate shown as the byte it stands for: encodable as UTF-8, and
    what every report format does with host bytes that are not UTF-8."""
    return _SURROGATE.sub(lambda m: _escape(m.group(0)), text) if _SURROGATE.search(text) else text


def sanitize_tree(value: Any) -> Any:
    """JSON string values: ``no_surrogates`` on every string of a JSON-like tree (dict keys included).

    Rule: JSON carries the host's data exactly. ``json.dumps`` escapes quotes, backslashes and control
    characters itself, so only what it cannot write is changed: lone surrogates become ``\\xNN`` text.
    """
    if isinstance(value, str):
        return no_surrogates(value)
    if isinstance(value, dict):
        return {sanitize_tree(k): sanitize_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [sanitize_tree(v) for v in value]
    return value


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """Terminal or plain text line: control characters (ANSI escapes, CR, NUL, DEL), line separators,
    bidi controls and lone surrogates become visible ``\\xNN``/``\\uNNNN`` escapes.

    Rule: one line (newlines shown as ``\\n``, tabs as a blank) unless ``keep_newlines``; then newlines
    and tabs stay. Backslashes are left as they are: the text is for reading, not for decoding.
    """
    if not keep_newlines:
        text = text.replace("\n", "\\n").replace("\t", " ")
    return _CONTROL.sub(lambda m: _escape(m.group(0)), text)


def display_text(text: str, *, multiline: bool = False) -> str:
    """A string in JSON that a tool shows to people (SARIF ``message.text``, GitLab code quality
    ``description``): ``printable``. Rule: surrogates escaped, control and bidi characters shown;
    one line unless ``multiline``. The JSON writer then escapes quotes and backslashes."""
    return printable(text, keep_newlines=multiline)


def display_tree(value: Any, *, multiline: bool = False) -> Any:
    """``display_text`` on every string of a JSON-like tree (dict keys included): a SARIF or code
    quality document whose every string a viewer may show."""
    if isinstance(value, str):
        return display_text(value, multiline=multiline)
    if isinstance(value, dict):
        return {display_tree(k): display_tree(v, multiline=multiline) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [display_tree(v, multiline=multiline) for v in value]
    return value


def sarif_message(text: str, *, multiline: bool = False) -> str:
    """The text of a SARIF ``message`` object (a result's, a location's, a notification's).

    Rule: ``display_text``, then what SARIF 2.1.0 reads in a message string is made literal: ``[`` and
    ``]`` get a backslash (3.11.6: ``[text](N)`` is an embedded link to a location or a URI, which a
    viewer makes clickable; a backslash already before a bracket is doubled, so it cannot cancel the
    escape), and ``{`` and ``}`` are doubled (3.11.5: ``{0}`` is a placeholder). A viewer shows the
    text a host gave; nothing in it is a link or an argument."""
    shown = display_text(text, multiline=multiline)
    shown = re.sub(r"(\\*)([\[\]])", lambda m: m.group(1) * 2 + "\\" + m.group(2), shown)
    return shown.replace("{", "{{").replace("}", "}}")


def uri_path(path: str) -> str:
    """A host path as the path of a URI (SARIF ``artifactLocation.uri``): its bytes (surrogateescape:
    the host's own bytes) percent-encoded but for unreserved characters and ``/``. Rule: nothing in
    the result is a URI delimiter (``#``, ``?``, ``%``, ``:``), a blank or a control character."""
    from urllib.parse import quote

    return quote(path.encode("utf-8", "surrogateescape"), safe="/")


# -- XML ----------------------------------------------------------------------------------------------

#: Characters XML 1.0 forbids that printable() leaves alone (the other forbidden ones are control
#: characters and lone surrogates, which it escapes).
_XML_NONCHARS = re.compile("[\ufffe\uffff]")


def xml_text(text: str | None, *, multiline: bool = False) -> str:
    """XML text content or attribute value, for an XML writer (ElementTree, junit-xml) to escape.

    Rule: ``printable`` (controls shown as ``\\xNN`` instead of being dropped, as junit-xml's own
    cleaning would, which hides what the host had), then U+FFFE and U+FFFF, which XML 1.0 forbids even
    as character references, as ``\\ufffe``. The result holds only characters XML 1.0 allows; one line
    unless ``multiline`` (an attribute value would lose its newlines to normalisation anyway).
    """
    out = printable(text or "", keep_newlines=multiline)
    if multiline:
        out = out.replace("\t", " ")
    return _XML_NONCHARS.sub(_unicode_escape, out)


_XML_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"}


def xml_markup(text: str | None, *, multiline: bool = False) -> str:
    """``xml_text`` escaped for splicing into XML written by hand, as element text or a quoted
    attribute value alike: ``& < > " '`` become entities, so nothing in it is markup."""
    return re.sub("[&<>\"']", lambda m: _XML_ENTITIES[m.group(0)], xml_text(text, multiline=multiline))


def xml_comment_text(text: str) -> str:
    """``text`` made safe as the content of an XML comment (``<!-- ... -->``), visibly.

    Control characters, bidi overrides and lone surrogates are escaped as printable() shows them
    (``\\x1b``, ``\\n``), as are U+FFFE and U+FFFF, which XML forbids; every ``-`` followed by another
    ``-`` or by the end of the text becomes ``\\x2d``. The result never contains ``--`` and never ends
    with ``-``, so host text can neither close the comment nor make the document malformed:
    ``--><model>x</model><!--`` stays text, shown as ``\\x2d-><model>x</model><!\\x2d\\x2d``.
    """
    out = _XML_NONCHARS.sub(_unicode_escape, printable(text))
    return re.sub(r"-(?=-|\Z)", lambda m: "\\x2d", out)


def cdata_section(text: str | None) -> str:
    """A whole CDATA section (``<![CDATA[...]]>``) holding ``xml_text(text, multiline=True)``.

    Rule: ``]]>`` cannot be written inside a section, so it is split across two, ``]]`` ending one
    and ``>`` starting the next: a parser reads back exactly the text, markup included, as text.
    """
    body = xml_text(text, multiline=True).replace("]]>", "]]]]><![CDATA[>")
    return f"<![CDATA[{body}]]>"


# -- HTML ---------------------------------------------------------------------------------------------

#: Noncharacters, which HTML calls parse errors: U+FDD0..U+FDEF and the last two code points of
#: every plane. (Patterns only the HTML and shell contexts use are left as text, compiled by ``re``
#: on first use, so that a JSON run does not pay for them.)
_HTML_NONCHARS = ("[\ufdd0-\ufdef\ufffe\uffff"
                  + "".join(f"{chr(p << 16 | 0xFFFE)}{chr(p << 16 | 0xFFFF)}" for p in range(1, 17)) + "]")
#: as markupsafe (jinja's autoescape) writes them, so ``show`` output equals autoescaped output
_HTML_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;"}


def html_text(text: object, *, multiline: bool = False) -> str:
    """HTML text or a quoted attribute value (the template's ``show`` filter), already escaped.

    Rule: ``printable`` (control, bidi and line-separator characters shown, so they cannot hide or
    reorder what the page says), noncharacters shown as ``\\ufffe``, then ``& < > " '`` as entities,
    exactly as jinja's autoescape writes them. ``None`` is the empty string. Not for inside
    ``<script>`` or ``<style>``: no host text goes there.
    """
    shown = printable("" if text is None else str(text), keep_newlines=multiline)
    shown = re.sub(_HTML_NONCHARS, _unicode_escape, shown)
    return re.sub("[&<>\"']", lambda m: _HTML_ENTITIES[m.group(0)], shown)


# -- shell --------------------------------------------------------------------------------------------

#: What single quotes would carry raw and unseen: what printable() escapes, and newline and tab (a
#: word would span lines or hide in blanks). Such runs are written in ANSI-C quoting instead.
_SHELL_SPECIAL = f"[{_CONTROL_CHARS}\\n\\t]+"


def _ansi_c(run: str) -> str:
    out = []
    for ch in run:
        if ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        else:
            raw = ch.encode("utf-8", "surrogateescape" if 0xDC80 <= ord(ch) <= 0xDCFF else "surrogatepass")
            out.extend(f"\\x{b:02x}" for b in raw)
    return "$'" + "".join(out) + "'"


def shell_word(text: str) -> str:
    """One bash word whose value is exactly ``text`` (its bytes: a surrogateescape string gives the
    host's own bytes back), e.g. a host path in a command.

    Rule: ``shlex.quote`` (bare when only ``[A-Za-z0-9_@%+=:,./-]``, else single quotes, in which
    nothing is expanded: ``$(...)``, backticks, ``;`` and ``#`` are text); runs of characters that
    single quotes would carry raw and unseen (controls, newline, tab, bidi controls, non-UTF-8
    bytes) are written as ``$'\\xNN'`` (ANSI-C quoting, the UTF-8 bytes, whatever the locale) beside
    them in the same word. The result is one printable line. A NUL cannot be in any bash word:
    ValueError.
    """
    import shlex  # not on the path of a JSON run

    if "\x00" in text:
        raise ValueError("a shell word cannot hold a NUL byte")
    if not re.search(_SHELL_SPECIAL, text):
        return shlex.quote(text)
    parts = []
    pos = 0
    for m in re.finditer(_SHELL_SPECIAL, text):
        if m.start() > pos:
            parts.append(shlex.quote(text[pos:m.start()]))
        parts.append(_ansi_c(m.group(0)))
        pos = m.end()
    if pos < len(text):
        parts.append(shlex.quote(text[pos:]))
    return "".join(parts)


def shell_hint(text: str) -> str:
    """``text`` as a person would type it as one shell word, for a message or a comment that shows a
    command: ``shell_word``, or, when no word can hold it (a NUL), ``printable`` text."""
    return printable(text) if "\x00" in text else shell_word(text)


def shell_comment(text: str) -> str:
    """One bash comment line: ``# `` and ``printable(text)``.

    Rule: only a newline ends a bash comment, and printable() leaves none (nor CR, NUL or another
    control), so whatever ``text`` holds, the line is a comment and the next line is the script's
    own; nothing in it is executed (``$(...)``, backticks, ``;`` are text). Trailing blanks dropped.
    """
    return f"# {printable(text)}".rstrip()


# -- Prometheus -------------------------------------------------------------------------------------


def prom_label_value(text: str) -> str:
    """A label value of the Prometheus text format (0.0.4), to go between its double quotes.

    Rule: ``printable`` first (newlines as ``\\n`` text, control characters and surrogates ``\\xNN``),
    then the format's own escapes: ``\\`` as ``\\\\``, ``"`` as ``\\"``, line feed as ``\\n``. Host text can
    neither end the value nor start a line (``# TYPE``, a sample) of its own.
    """
    shown = printable(text)
    return shown.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
