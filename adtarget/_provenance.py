"""Provenance tokens: module-level objects that only the one legitimate constructor of a type holds.

A type that must come from one code path (e.g. exact counts only from the gate's output) takes a token
argument and refuses any other. Tokens pickle by reference, so objects keep them across processes.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Provenance"]


def _token(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name)


class Provenance:
    """A token named by the module global that holds it; unpickling yields that same object."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return _token, (self.module, self.name)

    def __repr__(self) -> str:
        return f"<provenance {self.module}.{self.name}>"
