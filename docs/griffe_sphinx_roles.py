"""Griffe extension of the API reference: Sphinx roles in docstrings become cross-references.

The project's docstrings name other objects the Sphinx way (``:class:`TaskPlugin```,
``:func:`~remotesam.bench.kit.files.require_dir```, ``:meth:`reduce```). mkdocstrings reads
Google-style docstrings as Markdown, where such a role would stay as literal text; this
extension (``extensions`` in ``mkdocs.yml``) rewrites each one, once the package is loaded, into
an *optional* mkdocs-autorefs reference: a link where the target is documented on one of the
pages, else the name as code. A target is looked up in the scope of the docstring's object
(its members, its parents', their imports), as Python would resolve the name there; ``~``
shows the last component only, ``title <target>`` shows ``title``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import griffe

_ROLE = re.compile(
    r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const|type):`(?P<target>[^`]+)`")
#: ``title <target>`` inside a role: the link shows ``title``.
_TITLED = re.compile(r"(?P<title>.*?)\s*<(?P<target>[^<>]+)>")


def _objects(obj: griffe.Object) -> Iterator[griffe.Object]:
    """``obj`` and every object defined inside it (aliases are not followed)."""
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member)  # type: ignore[arg-type]


def _identifier(obj: griffe.Object, target: str) -> str:
    """The full path ``target`` names where ``obj`` is defined (``target`` itself if unknown)."""
    head, _, rest = target.partition(".")
    try:
        full = obj.resolve(head)
    except (griffe.NameResolutionError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return target
    return f"{full}.{rest}" if rest else full


def _reference(obj: griffe.Object, role_target: str) -> str:
    titled = _TITLED.fullmatch(role_target.strip())
    if titled:
        title, role_target = titled["title"], titled["target"]
    short = role_target.startswith("~")
    target = role_target.lstrip("~").lstrip(".")
    text = title if titled else target.rsplit(".", 1)[-1] if short else target
    identifier = _identifier(obj, target)
    return (f'<autoref identifier="{html.escape(identifier)}" optional>'
            f"<code>{html.escape(text)}</code></autoref>")


class SphinxRoles(griffe.Extension):
    """Rewrite the Sphinx roles of every docstring of a loaded package (see the module)."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader,
                   **kwargs: Any) -> None:
        for obj in _objects(pkg):
            doc = obj.docstring
            if doc is not None and ":" in doc.value:
                doc.value = _ROLE.sub(lambda m, o=obj: _reference(o, m["target"]), doc.value)
