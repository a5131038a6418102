"""Explicit SIMD for numba: a 16-lane float32 vector type, fused multiply-add, popcount.

numba's auto-vectoriser picks the wrong loop for a small matrix product (it vectorises
over the reduction with gathers and spills the accumulators), so the first-layer kernel
is written with an explicit vector type that LLVM keeps in registers: 16 accumulators of
16 lanes for 4 events × 64 outputs. ``llvm.fma`` and ``llvm.ctpop`` lower to the
machine's FMA and POPCNT instructions (AVX-512 or AVX2 pairs, whatever the CPU has).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

__all__ = [
    "LANES", "f32x16", "vload", "vsplat", "vfma", "vmask_gt0", "vstore", "popcount", "prefetch", "binary_mask8",
    "vadd", "vmul", "vmin", "vmax", "vroundeven", "vge_one",
]

LANES = 16
_VEC = ir.VectorType(ir.FloatType(), LANES)


class F32x16Type(types.Type):
    def __init__(self) -> None:
        super().__init__(name="f32x16")


f32x16 = F32x16Type()


@register_model(F32x16Type)
class _F32x16Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):  # type: ignore[no-untyped-def]
        super().__init__(dmm, fe_type, _VEC)


def _vector_pointer(context, builder, array_type, array, index):  # type: ignore[no-untyped-def]
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [index]), ir.PointerType(_VEC))


def _is_f32_array(array: types.Type) -> bool:
    return isinstance(array, types.Array) and array.dtype == types.float32 and array.ndim == 1


@intrinsic
def vload(typingctx, array, index):  # type: ignore[no-untyped-def]
    """The 16 float32 ``array[index : index + 16]`` (no bounds check: the caller pads)."""
    if not (_is_f32_array(array) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        return builder.load(_vector_pointer(context, builder, signature.args[0], args[0], index), align=4)

    return f32x16(array, index), codegen


@intrinsic
def vstore(typingctx, array, index, vector):  # type: ignore[no-untyped-def]
    """``array[index : index + 16] = vector``."""
    if not (_is_f32_array(array) and isinstance(index, types.Integer) and vector == f32x16):
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        builder.store(args[2], _vector_pointer(context, builder, signature.args[0], args[0], index), align=4)
        return context.get_dummy_value()

    return types.none(array, index, vector), codegen


@intrinsic
def vsplat(typingctx, value):  # type: ignore[no-untyped-def]
    """A vector with ``value`` in every lane."""
    if not isinstance(value, types.Float):
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        scalar = context.cast(builder, args[0], signature.args[0], types.float32)
        undef = ir.Constant(_VEC, ir.Undefined)
        first = builder.insert_element(undef, scalar, ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(first, undef, ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES))

    return f32x16(value), codegen


@intrinsic
def vfma(typingctx, a, b, c):  # type: ignore[no-untyped-def]
    """a × b + c lane by lane, one rounding (``llvm.fma``)."""
    if not (a == f32x16 and b == f32x16 and c == f32x16):
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VEC, [_VEC] * 3), "llvm.fma.v16f32")
        return builder.call(fma, args)

    return f32x16(a, b, c), codegen


@intrinsic
def vmask_gt0(typingctx, vector):  # type: ignore[no-untyped-def]
    """A uint64 whose bit i is set where lane i is > 0 (ordered: NaN gives 0)."""
    if vector != f32x16:
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        positive = builder.fcmp_ordered(">", args[0], ir.Constant(_VEC, [0.0] * LANES))
        return builder.zext(builder.bitcast(positive, ir.IntType(LANES)), ir.IntType(64))

    return types.uint64(vector), codegen


@intrinsic
def popcount(typingctx, word):  # type: ignore[no-untyped-def]
    """Number of set bits of a 64-bit word (``llvm.ctpop.i64``), as int64."""
    if not isinstance(word, types.Integer):
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        value = context.cast(builder, args[0], signature.args[0], types.uint64)
        ctpop = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(64), [ir.IntType(64)]), "llvm.ctpop.i64")
        return builder.call(ctpop, [value])

    return types.int64(word), codegen


@intrinsic
def prefetch(typingctx, array, row, byte):  # type: ignore[no-untyped-def]
    """Hint the cache to load ``byte`` bytes into row ``row`` of a 2-D array (``llvm.prefetch``, read, keep)."""
    if not (isinstance(array, types.Array) and array.ndim == 2 and isinstance(row, types.Integer) and isinstance(byte, types.Integer)):
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        stride = builder.extract_value(ary.strides, 0)
        row = context.cast(builder, args[1], signature.args[1], types.intp)
        byte = context.cast(builder, args[2], signature.args[2], types.intp)
        offset = builder.add(builder.mul(row, stride), byte)
        i8p = ir.IntType(8).as_pointer()
        address = builder.gep(builder.bitcast(ary.data, i8p), [offset])
        i32 = ir.IntType(32)
        hint = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0i8")
        builder.call(hint, [address, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.none(array, row, byte), codegen


_I64X8 = ir.VectorType(ir.IntType(64), 8)


@intrinsic
def binary_mask8(typingctx, signs, thresholds, index, word, ones):  # type: ignore[no-untyped-def]
    """Bits of 8 units of a binary layer on one input word, as a uint64 (bits 0-7).

    Unit ``index + u`` fires when 2·popcount(word AND signs[index + u]) − ones ≥
    thresholds[index + u] (``ones`` = popcount of the input). One vector AND, popcount
    and compare for the 8 units (no bounds check: the caller pads to a multiple of 8).
    """
    if not (isinstance(signs, types.Array) and signs.dtype == types.uint64 and signs.ndim == 1
            and isinstance(thresholds, types.Array) and thresholds.dtype == types.int64 and thresholds.ndim == 1):
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        index = context.cast(builder, args[2], signature.args[2], types.intp)

        def load(position: int) -> ir.Value:
            data = context.make_array(signature.args[position])(context, builder, args[position]).data
            return builder.load(builder.bitcast(builder.gep(data, [index]), ir.PointerType(_I64X8)), align=8)

        def splat(value: ir.Value) -> ir.Value:
            undef = ir.Constant(_I64X8, ir.Undefined)
            first = builder.insert_element(undef, value, ir.Constant(ir.IntType(32), 0))
            return builder.shuffle_vector(first, undef, ir.Constant(ir.VectorType(ir.IntType(32), 8), [0] * 8))

        word = context.cast(builder, args[3], signature.args[3], types.uint64)
        ones = context.cast(builder, args[4], signature.args[4], types.int64)
        ctpop = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_I64X8, [_I64X8]), "llvm.ctpop.v8i64")
        counts = builder.call(ctpop, [builder.and_(load(0), splat(word))])
        c = builder.sub(builder.shl(counts, ir.Constant(_I64X8, [1] * 8)), splat(ones))
        fires = builder.icmp_signed(">=", c, load(1))
        return builder.zext(builder.bitcast(fires, ir.IntType(8)), ir.IntType(64))

    return types.uint64(signs, thresholds, index, word, ones), codegen


def _binary_op(name: str, build):  # type: ignore[no-untyped-def]
    """An intrinsic ``name(a, b)`` on two f32x16 vectors."""

    def typer(typingctx, a, b):  # type: ignore[no-untyped-def]
        if not (a == f32x16 and b == f32x16):
            return None

        def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
            return build(builder, args[0], args[1])

        return f32x16(a, b), codegen

    typer.__name__ = name
    return intrinsic(typer)


def _min_max(which: str):  # type: ignore[no-untyped-def]
    def build(builder, a, b):  # type: ignore[no-untyped-def]
        # compare-and-select: for the integer-valued, NaN-free values of the kernels it is min/max
        keep_a = builder.fcmp_ordered("<" if which == "min" else ">", a, b)
        return builder.select(keep_a, a, b)

    return build


vadd = _binary_op("vadd", lambda builder, a, b: builder.fadd(a, b))
vadd.__doc__ = "a + b lane by lane."
vmul = _binary_op("vmul", lambda builder, a, b: builder.fmul(a, b))
vmul.__doc__ = "a × b lane by lane."
vmin = _binary_op("vmin", _min_max("min"))
vmin.__doc__ = "The smaller of a and b lane by lane."
vmax = _binary_op("vmax", _min_max("max"))
vmax.__doc__ = "The larger of a and b lane by lane."


@intrinsic
def vge_one(typingctx, a, b):  # type: ignore[no-untyped-def]
    """1.0 where a ≥ b, else 0.0, lane by lane (one compare and one blend)."""
    if not (a == f32x16 and b == f32x16):
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        reached = builder.fcmp_ordered(">=", args[0], args[1])
        return builder.select(reached, ir.Constant(_VEC, [1.0] * LANES), ir.Constant(_VEC, [0.0] * LANES))

    return f32x16(a, b), codegen


@intrinsic
def vroundeven(typingctx, a):  # type: ignore[no-untyped-def]
    """Round to the nearest integer, ties to even (``llvm.roundeven``: ``np.rint``, ``torch.round``, ``AP_RND_CONV``)."""
    if a != f32x16:
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VEC, [_VEC]), "llvm.roundeven.v16f32")
        return builder.call(fn, args)

    return f32x16(a), codegen
