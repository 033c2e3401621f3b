"""How each safetensors dtype becomes a torch or numpy dtype.

torch: every dtype torch has is mapped to it, the same way safetensors.torch does. The DLPack
export uses a type that every torch 2.x accepts from DLPack (or raw bytes of the same width),
and the tensor is then viewed as the real dtype: a same-width view keeps shape, strides and
storage exactly, and works on torch versions whose from_dlpack lacks the float8 and unsigned
codes.

numpy (device="cpu" without torch): numpy has no bfloat16 or float8. With ml_dtypes installed they
map to ml_dtypes' types (bfloat16, float8_e4m3fn, ...); without it they are raw unsigned integers
of the same width (bf16 -> uint16, f8 -> uint8) whose numpy dtype names the real type in its
metadata: array.dtype.metadata == {"hoist_dtype": "BF16"}. The bytes are the file's bytes either
way.

Quantized GGUF tensors (ggml's block types: Q8_0, Q4_K, ...) come back as their raw bytes: uint8
with one row of blocks per row of the tensor ([rows, bytes per row]), whose type name
safe_open.get_dtype() gives (numpy: also dtype.metadata == {"hoist_dtype": "Q8_0"}).

Sub-byte types are packed in the file. F4 (e2m1, two per byte) becomes torch.float4_e2m1fn_x2
with the last dimension halved, as torch defines it (numpy: uint8 with the same packed shape);
F6 types, which neither library has, are their packed bytes as a flat uint8 vector.
"""

from . import _dlpack as dl
from . import _lib

# safetensors name -> (DLPack code, bits) exported for torch, then the torch dtype viewed as
# (None: already exact).
_TORCH = {
    "BOOL": (dl.KDL_UINT, 8, "bool"),
    "U8": (dl.KDL_UINT, 8, None),
    "I8": (dl.KDL_INT, 8, None),
    "I16": (dl.KDL_INT, 16, None),
    "U16": (dl.KDL_INT, 16, "uint16"),
    "I32": (dl.KDL_INT, 32, None),
    "U32": (dl.KDL_INT, 32, "uint32"),
    "I64": (dl.KDL_INT, 64, None),
    "U64": (dl.KDL_INT, 64, "uint64"),
    "F16": (dl.KDL_FLOAT, 16, None),
    "BF16": (dl.KDL_BFLOAT, 16, None),
    "F32": (dl.KDL_FLOAT, 32, None),
    "F64": (dl.KDL_FLOAT, 64, None),
    "C64": (dl.KDL_COMPLEX, 64, None),
    "F8_E5M2": (dl.KDL_UINT, 8, "float8_e5m2"),
    "F8_E4M3": (dl.KDL_UINT, 8, "float8_e4m3fn"),
    "F8_E4M3FNUZ": (dl.KDL_UINT, 8, "float8_e4m3fnuz"),
    "F8_E5M2FNUZ": (dl.KDL_UINT, 8, "float8_e5m2fnuz"),
    "F8_E8M0": (dl.KDL_UINT, 8, "float8_e8m0fnu"),
    "F4": (dl.KDL_UINT, 8, "float4_e2m1fn_x2"),
    "F6_E2M3": (dl.KDL_UINT, 8, None),
    "F6_E3M2": (dl.KDL_UINT, 8, None),
}

# safetensors name -> (numpy typestr, ml_dtypes name or None)
_NUMPY = {
    "BOOL": ("|b1", None),
    "U8": ("|u1", None),
    "I8": ("|i1", None),
    "I16": ("<i2", None),
    "U16": ("<u2", None),
    "I32": ("<i4", None),
    "U32": ("<u4", None),
    "I64": ("<i8", None),
    "U64": ("<u8", None),
    "F16": ("<f2", None),
    "BF16": ("<u2", "bfloat16"),
    "F32": ("<f4", None),
    "F64": ("<f8", None),
    "C64": ("<c8", None),
    "F8_E5M2": ("|u1", "float8_e5m2"),
    "F8_E4M3": ("|u1", "float8_e4m3fn"),
    "F8_E4M3FNUZ": ("|u1", "float8_e4m3fnuz"),
    "F8_E5M2FNUZ": ("|u1", "float8_e5m2fnuz"),
    "F8_E8M0": ("|u1", "float8_e8m0fnu"),
    "F4": ("|u1", None),
    "F6_E2M3": ("|u1", None),
    "F6_E3M2": ("|u1", None),
}

# Types that numpy itself has: their arrays carry no "hoist_dtype" metadata.
_NUMPY_NATIVE = {"BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64", "F16", "F32",
                 "F64", "C64"}


def is_block_type(name):
    """A ggml block type (quantized GGUF): none of the element types above."""
    return name not in _TORCH


def packed_shape(name, shape, nbytes):
    """The shape a tensor is exported with: its own, except for packed sub-byte types and block
    types (their bytes, a row of blocks per row)."""
    if is_block_type(name):
        rows = 1
        for d in shape[:-1]:
            rows *= d
        if shape and rows and nbytes % rows == 0:
            return tuple(shape[:-1]) + (nbytes // rows,)
        return (nbytes,)
    if name == "F4" and shape and shape[-1] % 2 == 0:
        return tuple(shape[:-1]) + (shape[-1] // 2,)
    if name in ("F4", "F6_E2M3", "F6_E3M2"):
        return (nbytes,)
    return tuple(shape)


def torch_plan(name):
    """(DLPack code, bits, torch dtype or None) for a safetensors dtype."""
    if is_block_type(name):
        return dl.KDL_UINT, 8, None
    code, bits, target = _TORCH[name]
    if target is None:
        return code, bits, None
    import torch

    dtype = getattr(torch, target, None)
    if dtype is None:
        raise _lib.error_as(TypeError, "HOIST_E_BAD_DTYPE",
                            "this torch (%s) has no torch.%s for safetensors dtype %s"
                            % (torch.__version__, target, name))
    return code, bits, dtype


def numpy_dtype(name, ml_dtypes_module):
    """The numpy dtype of a safetensors dtype: ml_dtypes' type where there is one and
    ml_dtypes_module is given, else numpy's, else the raw integer type named in its metadata."""
    import numpy as np

    if is_block_type(name):
        return np.dtype("|u1", metadata={"hoist_dtype": name})
    typestr, ml_name = _NUMPY[name]
    if ml_name is not None and ml_dtypes_module is not None:
        t = getattr(ml_dtypes_module, ml_name, None)
        if t is not None:
            return np.dtype(t)
    if name in _NUMPY_NATIVE:
        return np.dtype(typestr)
    return np.dtype(typestr, metadata={"hoist_dtype": name})


def numpy_typestr(name):
    """The numpy type the raw bytes are read as."""
    return "|u1" if is_block_type(name) else _NUMPY[name][0]


def names():
    """Every safetensors dtype name the binding maps."""
    return sorted(_TORCH)
