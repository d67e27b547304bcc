"""Four consecutive array elements read or written as one vector.

``load4(a, i)`` returns ``(a[i], a[i+1], a[i+2], a[i+3])`` and
``store4(a, i, v)`` writes a 4-tuple back.  On a GPU each is one vector
instruction (``ld.global.v4.f32``: 16 bytes for float32, 8 for float16, two
16-byte halves for float64), which is what lets an elementwise kernel keep
the memory bus as busy as a copy does.  The caller guarantees that
``a[i]`` is aligned to ``VECTOR_ALIGN(itemsize)`` bytes.

Under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) the same names are
plain Python with the same meaning, so the kernels run unchanged there.
"""

from __future__ import annotations

#: Elements per vector.
WIDTH = 4


def vector_align(itemsize: int) -> int:
    """Bytes a vector's first element must be aligned to (the hardware's limit is 16)."""
    return min(16, WIDTH * itemsize)


def _simulating() -> bool:
    from numba import config

    return bool(config.ENABLE_CUDASIM)


if _simulating():

    def load4(a, i):
        return a[i], a[i + 1], a[i + 2], a[i + 3]

    def store4(a, i, v):
        a[i], a[i + 1], a[i + 2], a[i + 3] = v

else:
    from llvmlite import ir
    from numba import types
    from numba.cuda import cgutils
    from numba.cuda.extending import intrinsic

    def _vector_pointer(context, builder, arrty, array, index):
        ary = context.make_array(arrty)(context, builder, array)
        ptr = cgutils.get_item_pointer(context, builder, arrty, ary, [index])
        elt = context.get_data_type(arrty.dtype)
        vty = ir.VectorType(elt, WIDTH)
        return builder.bitcast(ptr, vty.as_pointer()), vty, vector_align(context.get_abi_sizeof(elt))

    @intrinsic
    def load4(typingctx, a, i):
        if not isinstance(a, types.Array) or not isinstance(i, types.Integer):
            return None
        sig = types.UniTuple(a.dtype, WIDTH)(a, i)

        def codegen(context, builder, sig, args):
            ptr, _, align = _vector_pointer(context, builder, sig.args[0], *args)
            vec = builder.load(ptr, align=align)
            items = [builder.extract_element(vec, ir.IntType(32)(k)) for k in range(WIDTH)]
            return context.make_tuple(builder, sig.return_type, items)

        return sig, codegen

    @intrinsic
    def store4(typingctx, a, i, v):
        if not isinstance(a, types.Array) or not isinstance(i, types.Integer):
            return None
        if not isinstance(v, types.BaseTuple) or len(v) != WIDTH:
            return None
        sig = types.void(a, i, v)

        def codegen(context, builder, sig, args):
            arrty, _, vty_numba = sig.args
            ptr, vty, align = _vector_pointer(context, builder, arrty, args[0], args[1])
            vec = ir.Constant(vty, ir.Undefined)
            for k in range(WIDTH):
                item = builder.extract_value(args[2], k)
                item = context.cast(builder, item, vty_numba[k], arrty.dtype)
                vec = builder.insert_element(vec, item, ir.IntType(32)(k))
            builder.store(vec, ptr, align=align)
            return context.get_dummy_value()

        return sig, codegen
