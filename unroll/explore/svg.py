"""Mark up a graphviz SVG of an unrolled graph so a page can find each node copy.

Graphviz gives every node a ``<g class="node">`` whose ``<title>`` holds its DOT id, which
for a node copy ``(name, t)`` is ``name_t`` (``name_m1`` for ``t = -1``). Each copy's group
gets ``data-node``, ``data-step``, ``tabindex="0"`` (so the keyboard reaches it) and an
``aria-label``; each step's cluster ``data-step``, the cluster of the steps a long
sequence elides ``data-elided``. Ids are prefixed so that
several diagrams live in one page, and graphviz's link titles (which browsers show as
tooltips of their own) are moved to ``data-about``. Nothing depends on labels or layout.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

__all__ = ["annotate", "copy_of"]

_SVG = "http://www.w3.org/2000/svg"
_XLINK = "http://www.w3.org/1999/xlink"
_INSTANCE = re.compile(r"^(?P<name>.+)_(?P<minus>m?)(?P<step>\d+)$")
_CLUSTER_STEP = re.compile(r"^cluster_step(\d+)$")
_CLUSTER_ELIDED = "cluster_hidden"  # the ⋯ N steps ⋯ of a long sequence

ET.register_namespace("", _SVG)
ET.register_namespace("xlink", _XLINK)


def copy_of(dot_id: str, copies) -> tuple[str, int] | None:
    """The node copy ``(name, t)`` a DOT id stands for, if it is ``in copies``.

    Examples
    --------
    >>> copies = {("h", 2), ("h_l0", -1)}
    >>> copy_of("h_2", copies), copy_of("h_l0_m1", copies), copy_of("h_0.into1", copies)
    (('h', 2), ('h_l0', -1), None)
    """
    match = _INSTANCE.match(dot_id)
    if match is None:
        return None
    step = int(match["step"]) * (-1 if match["minus"] else 1)
    key = (match["name"], step)
    return key if key in copies else None


def annotate(svg: str, copies, prefix: str) -> tuple[str, list[tuple[str, int]]]:
    """``svg`` with its node copies marked up, and the copies it draws, in drawing order.

    Parameters
    ----------
    svg : str
        Graphviz's SVG output.
    copies : container of (str, int)
        The node copies of the unrolled graph (anything ``in`` works on: a set, or a
        result's ``values``).
    prefix : str
        Prepended to every ``id`` (and every reference to one).

    Examples
    --------
    >>> import unroll
    >>> u = unroll.unroll(unroll.presets.neuron(), 2)
    >>> svg = unroll.render(u).pipe(format="svg").decode()
    >>> marked, drawn = annotate(svg, set(u.dag.nodes), "m0-")
    >>> sorted(drawn)
    [('h', -1), ('h', 0), ('h', 1), ('x', 0), ('x', 1)]
    >>> 'data-node="h" data-step="1"' in marked, "<title>" in marked
    (True, False)
    """
    root = ET.fromstring(svg)
    drawn = []
    for group in root.iter(f"{{{_SVG}}}g"):
        title = group.find(f"{{{_SVG}}}title")
        name = title.text.strip() if title is not None and title.text else ""
        kind = group.get("class")
        if kind == "node" and (copy := copy_of(name, copies)) is not None:
            _mark_copy(group, copy)
            drawn.append(copy)
        elif kind == "cluster" and (step := _CLUSTER_STEP.match(name)):
            group.set("data-step", step[1])
        elif kind == "cluster" and name == _CLUSTER_ELIDED:
            group.set("data-elided", "")
        if title is not None:
            group.remove(title)
    for element in root.iter():
        _move_link_title(element)
        ident = element.get("id")
        if ident:
            element.set("id", prefix + ident)
    root.set("role", "img")
    root.set("data-width", root.get("width", ""))  # graphviz's size, for "actual size"
    root.set("width", "100%")  # scale with the page; the viewBox keeps the proportions
    root.attrib.pop("height", None)
    return ET.tostring(root, encoding="unicode"), drawn


def _mark_copy(group: ET.Element, copy: tuple[str, int]) -> None:
    name, step = copy
    group.set("data-node", name)
    group.set("data-step", str(step))
    group.set("tabindex", "0")
    group.set("aria-label", f"{name} at t = {step}")


def _move_link_title(element: ET.Element) -> None:
    about = element.attrib.pop(f"{{{_XLINK}}}title", None)
    if about is not None:
        element.set("data-about", about)
