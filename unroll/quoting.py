"""Every user-given string on its way into DOT, SVG/HTML labels, TOML or JSON, in one place.

Names of nodes, weights and biases must match :data:`NAME_PATTERN` as a whole
(:func:`is_name` uses ``fullmatch``, so ``"h\\n"`` is refused). Free text (a graph's
name, a title) is never refused but escaped here: :func:`dot_id` turns it into a DOT
identifier that graphviz cannot read as markup, :func:`html_text` escapes it for an
HTML-like label (control characters become U+FFFD) and :func:`toml_string` quotes it for
a TOML file (JSON text comes from :func:`json.dumps`, which escapes everything). No
user-given string becomes a file name: outputs are named by the user.
"""

from __future__ import annotations

import html
import json
import re

__all__ = ["NAME_PATTERN", "dot_id", "html_text", "is_name", "toml_string"]

#: What a node, weight or bias name looks like: a letter or ``_``, then letters, digits, ``_``.
NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"

_NAME = re.compile(NAME_PATTERN)
_NOT_ID = re.compile(r"[^A-Za-z0-9_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_TOML_ESCAPES = re.compile(r"[\x00-\x1f\x7f]")


def is_name(text: object) -> bool:
    """Whether ``text`` is a string matching :data:`NAME_PATTERN` as a whole.

    Examples
    --------
    >>> is_name("W_hh"), is_name("h\\n"), is_name("2h"), is_name(3)
    (True, False, False, False)
    """
    return isinstance(text, str) and _NAME.fullmatch(text) is not None


def dot_id(text: str, default: str = "graph") -> str:
    """``text`` as a plain DOT identifier: every other character becomes ``_``.

    Graphviz passes a name such as ``<x> { evil [URL=...] } <y>`` through as an HTML
    string, so a graph's name is never given to it raw.

    Examples
    --------
    >>> dot_id("elman"), dot_id('<x> { evil [URL="javascript:1"] } <y>'), dot_id("2 nets")
    ('elman', '_x____evil__URL__javascript_1______y_', '_2_nets')
    """
    out = _NOT_ID.sub("_", str(text))
    if not out:
        return default
    return f"_{out}" if out[0].isdigit() else out


def html_text(text: str, quote: bool = False) -> str:
    """``text`` escaped for the text of an HTML-like graphviz label (or an HTML element).

    ``& < >`` become entities (quotes too with ``quote=True``, for attribute values);
    control characters (which make graphviz fail or write invalid SVG) become U+FFFD;
    tabs and newlines become spaces.

    Examples
    --------
    >>> html_text('a <b> & "c"\\x00\\n'), html_text('"c"', quote=True)
    ('a &lt;b&gt; &amp; "c"\\ufffd ', '&quot;c&quot;')
    """
    text = str(text).replace("\t", " ").replace("\n", " ").replace("\r", " ")
    return html.escape(_CONTROL.sub("\ufffd", text), quote=quote)


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string (every control character escaped).

    Examples
    --------
    >>> print(toml_string('a "b"\\\\\\x7f'))
    "a \\"b\\"\\\\\\u007f"
    """
    quoted = json.dumps(str(text), ensure_ascii=False)
    return _TOML_ESCAPES.sub(lambda m: f"\\u{ord(m[0]):04x}", quoted)
