"""LLVM intrinsics the kernels call that numba does not expose.

:data:`prefetch` hints the CPU to fetch an array element into the caches ahead of its use: the hash-table
probes of ingestion (``_factorize.py``) and the block scatter of profiles (``_profiles.py``) touch memory in
patterns the hardware prefetcher cannot predict (random slots; ~130 concurrent write streams).
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["prefetch"]


def _prefetch_typing(typingctx: Any, array: Any, index: Any) -> Any:
    """Hint the CPU to fetch ``array[index]`` into the caches (LLVM's ``prefetch``: read, keep, data)."""
    signature = types.void(array, types.intp)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        view = context.make_array(sig.args[0])(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, sig.args[0], view, [args[1]])
        byte_pointer = ir.IntType(8).as_pointer()
        int32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, int32, int32, int32]), "llvm.prefetch.p0")
        builder.call(function, [builder.bitcast(pointer, byte_pointer), int32(0), int32(3), int32(1)])
        return context.get_dummy_value()

    return signature, codegen


prefetch: Any = intrinsic(_prefetch_typing)
