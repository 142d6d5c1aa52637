"""Provenance tokens: module-level objects that only the one legitimate constructor of a type holds.

A type that must come from one code path (e.g. exact counts only from the gate's output) takes a token
argument and refuses any other. Tokens pickle by reference, so objects keep them across processes.
"""

from __future__ import annotations

__all__ = ["Provenance"]


class Provenance:
    """A named token; ``__reduce__`` returns the module-global name so unpickling yields the same object."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __reduce__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<provenance {self.name}>"
