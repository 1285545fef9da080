"""A cache hint for numba kernels: :func:`prefetch_row` asks the CPU to start loading a row of a 2-D array into the
cache while the kernel still computes on other data, so that a later pass over that row does not wait for memory.

It is a hint only (LLVM's ``llvm.prefetch``, one per 64-byte line): it changes no value, never faults, and
compiles to nothing on a CPU without prefetch instructions.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic

__all__ = ["prefetch_row"]

#: bytes per cache line on the x86-64 and arm64 CPUs theorykit runs on
CACHE_LINE = 64


@intrinsic
def prefetch_row(typingctx, array, row):
    """``prefetch_row(A, i)`` inside numba code: hint that row ``i`` of the C-contiguous 2-D array ``A`` will be
    read soon (into every cache level). ``i`` must be a valid row index."""
    if not (isinstance(array, types.Array) and array.ndim == 2 and array.layout == "C"):
        raise TypingError(f"prefetch_row needs a C-contiguous 2-D array, got {array}")
    if not isinstance(row, types.Integer):
        raise TypingError(f"prefetch_row needs an integer row index, got {row}")

    def codegen(context, builder, signature, args):
        array_type, row_type = signature.args
        data = context.make_array(array_type)(context, builder, args[0])
        i = context.cast(builder, args[1], row_type, types.intp)
        byte_ptr = ir.IntType(8).as_pointer()
        row_stride = builder.extract_value(data.strides, 0)
        start = builder.gep(builder.bitcast(data.data, byte_ptr), [builder.mul(i, row_stride)])
        n_bytes = builder.mul(builder.extract_value(data.shape, 1),
                              context.get_constant(types.intp, context.get_abi_sizeof(
                                  context.get_data_type(array_type.dtype))))
        i32 = ir.IntType(32)
        hint = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32]),
                                              "llvm.prefetch.p0i8")
        with cgutils.for_range_slice(builder, context.get_constant(types.intp, 0), n_bytes,
                                     context.get_constant(types.intp, CACHE_LINE)) as (offset, _):
            # read access, highest temporal locality (keep in all cache levels), data cache
            builder.call(hint, [builder.gep(start, [offset]), ir.Constant(i32, 0), ir.Constant(i32, 3),
                                ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(array, row), codegen
