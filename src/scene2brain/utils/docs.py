"""Docstring templates: parameter descriptions written once and shared (nilearn's ``fill_doc`` pattern).

A layer keeps a dict of numpydoc snippets, one per parameter, and decorates every
function or class that documents those parameters::

    DOCS = {"alphas": "alphas : array-like of float\\n    Candidate strengths."}
    fill_doc = doc_filler(DOCS)

    @fill_doc
    def fit(X, alphas):
        '''Fit.

        Parameters
        ----------
        %(alphas)s
        '''

Each ``%(name)s`` placeholder is replaced by its snippet, every line after the first
indented like the placeholder, so snippets are written flush left (header line, then
the description indented by four spaces). Snippets are inserted as they are (they hold
no placeholders themselves); other ``%`` signs are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TypeVar

T = TypeVar("T")

_PLACEHOLDER = re.compile(r"%\((?P<name>\w+)\)s")


def fill_docstring(doc: str, docdict: Mapping[str, str]) -> str:
    """``doc`` with every ``%(name)s`` replaced by ``docdict[name]``, indented like the placeholder.

    Parameters
    ----------
    doc : str
        A docstring.
    docdict : mapping of str to str
        Snippets by name; a snippet's lines after the first get the placeholder's indentation.

    Returns
    -------
    str

    Raises
    ------
    KeyError
        A placeholder names no snippet.
    """

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in docdict:
            raise KeyError(f"docstring placeholder %({name})s: no such entry (known: {sorted(docdict)})")
        line = doc[doc.rfind("\n", 0, match.start()) + 1 : match.start()]
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        return docdict[name].strip("\n").replace("\n", "\n" + indent)

    return _PLACEHOLDER.sub(replace, doc)


def doc_filler(docdict: Mapping[str, str]) -> Callable[[T], T]:
    """A decorator that fills ``%(name)s`` placeholders in a function's or class's docstring.

    Parameters
    ----------
    docdict : mapping of str to str
        Snippets by name (see :func:`fill_docstring`).

    Returns
    -------
    callable
        The decorator; it returns the object itself with ``__doc__`` filled (docstrings
        stripped by ``python -OO`` stay None).
    """

    def fill_doc(obj: T) -> T:
        if obj.__doc__:
            obj.__doc__ = fill_docstring(obj.__doc__, docdict)
        return obj

    return fill_doc
