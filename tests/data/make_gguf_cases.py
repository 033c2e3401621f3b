#!/usr/bin/env python3
"""Writes the handcrafted GGUF test files under tests/data/gguf/ and their table in
tests/data/gguf/README.md. Each bad file breaks exactly one rule of the format (docs/RELIABILITY.md
cases 16-24) and is otherwise valid, so that removing the check for that rule would let the file
through (or fail differently). The valid files (v_*) cover every metadata value type, every ggml
tensor type, version 2, and the edge cases that must load.
Run from anywhere: python3 tests/data/make_gguf_cases.py

Built at test time instead: a header above the 256 MiB limit (a sparse file), a directory, a FIFO.
"""
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "gguf")

CASES = []  # (file name, RELIABILITY case or "-", expected status, what it is)

# GGUF metadata value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<B",
       U64: "<Q", I64: "<q", F64: "<d"}

# ggml tensor types that GGUF files may hold: id -> (name, elements per block, bytes per block),
# from ggml's type_traits (ggml/src/ggml.c) and block structs (ggml-common.h).
QK_K = 256
GGML = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36),
    10: ("Q2_K", QK_K, 2 + 2 + QK_K // 16 + QK_K // 4),
    11: ("Q3_K", QK_K, 2 + QK_K // 4 + QK_K // 8 + 12),
    12: ("Q4_K", QK_K, 2 + 2 + QK_K // 2 + 12),
    13: ("Q5_K", QK_K, 2 + 2 + QK_K // 2 + QK_K // 8 + 12),
    14: ("Q6_K", QK_K, 2 + QK_K // 2 + QK_K // 4 + QK_K // 16),
    15: ("Q8_K", QK_K, 4 + QK_K + QK_K // 8),
    16: ("IQ2_XXS", QK_K, 2 + QK_K // 4), 17: ("IQ2_XS", QK_K, 2 + QK_K // 4 + QK_K // 32),
    18: ("IQ3_XXS", QK_K, 2 + QK_K // 4 + QK_K // 8), 19: ("IQ1_S", QK_K, 2 + QK_K // 8 + QK_K // 16),
    20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", QK_K, 2 + QK_K // 4 + QK_K // 8 + QK_K // 32 + 4),
    22: ("IQ2_S", QK_K, 2 + QK_K // 4 + QK_K // 16), 23: ("IQ4_XS", QK_K, 2 + 2 + QK_K // 2 + QK_K // 64),
    24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8),
    29: ("IQ1_M", QK_K, QK_K // 8 + QK_K // 16 + QK_K // 32), 30: ("BF16", 1, 2),
    34: ("TQ1_0", QK_K, 2 + 4 * 13), 35: ("TQ2_0", QK_K, 2 + 64),
    39: ("MXFP4", 32, 1 + 16), 40: ("NVFP4", 64, 4 + 32), 41: ("Q1_0", 128, 2 + 16),
    42: ("Q2_0", 64, 2 + 16),
}


def s(text):
    b = text if isinstance(text, bytes) else text.encode()
    return struct.pack("<Q", len(b)) + b


def val(vt, v):
    if vt == STRING:
        return s(v)
    if vt == ARRAY:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(val(et, x) for x in items)
    return struct.pack(FMT[vt], v)


def kv(key, vt, v):
    return s(key) + struct.pack("<I", vt) + val(vt, v)


def nbytes(ne, gtype):
    _, blk, size = GGML[gtype]
    n = ne[0] // blk * size
    for d in ne[1:]:
        n *= d
    return n


def pad(n, a):
    return (n + a - 1) // a * a


def pattern(n, seed=3):
    return bytes((i * 7 + seed) & 0xFF for i in range(n))


def gguf(kvs=(), tensors=(), version=3, magic=b"GGUF", alignment=32, n_tensors=None, n_kv=None,
         offsets=None, data=None, cut=0, trailing=b"", pad_last=True, header_only=False):
    """A GGUF file. kvs: encoded key-value pairs (bytes, from kv()). tensors: (name, ne, type) or
    (name, ne, type, size) where size overrides the computed byte size; their offsets are laid out
    back to back with padding, unless `offsets` gives them. data: the data section (default: each
    tensor's pattern, padded). cut: bytes dropped from the end. """
    tensors = [t if len(t) == 4 else (*t, nbytes(t[1], t[2])) for t in tensors]
    offs, pos = [], 0
    for name, ne, gtype, size in tensors:
        offs.append(pos)
        pos = pad(pos + size, alignment)
    if offsets is not None:
        offs = offsets
    head = magic + struct.pack("<I", version)
    head += struct.pack("<QQ", len(tensors) if n_tensors is None else n_tensors,
                        len(kvs) if n_kv is None else n_kv)
    head += b"".join(kvs)
    for (name, ne, gtype, size), off in zip(tensors, offs):
        head += s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d & (2**64 - 1))
                                                                for d in ne)
        head += struct.pack("<IQ", gtype, off)
    if header_only:
        return head
    head += b"\0" * (pad(len(head), alignment) - len(head))
    if data is None:
        data = b""
        for i, (name, ne, gtype, size) in enumerate(tensors):
            data += pattern(size, i)
            if pad_last or i + 1 < len(tensors):
                data += b"\0" * (pad(len(data), alignment) - len(data))
    out = head + data + trailing
    return out[:len(out) - cut] if cut else out


def case(name, num, status, what, content):
    CASES.append((name, num, status, what))
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(content)


ARCH = kv("general.architecture", STRING, "llama")
ONE = [("a", [4], 0)]  # one F32 tensor of 16 bytes


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)

    # ---- 16: magic and version
    case("c16_empty.gguf", 16, "TRUNCATED_HEADER", "0-byte file named .gguf", b"")
    case("c16_short.gguf", 16, "TRUNCATED_HEADER", "23 bytes: the counts cut short",
         gguf([ARCH], ONE)[:23])
    case("c16_bad_magic.gguf", 16, "BAD_MAGIC", "magic \"GGUG\"", gguf([ARCH], ONE, magic=b"GGUG"))
    case("c16_magic_lowercase.gguf", 16, "BAD_MAGIC", "magic \"gguf\"",
         gguf([ARCH], ONE, magic=b"gguf"))
    case("c16_safetensors_named_gguf.gguf", 16, "BAD_MAGIC", "a safetensors file named .gguf",
         struct.pack("<Q", 2) + b"{}")
    for v, what in [(0, "version 0"), (1, "version 1 (32-bit counts)"), (4, "version 4"),
                    (0xFFFFFFFF, "version 2^32-1")]:
        case("c16_version_%s.gguf" % ("u32max" if v == 0xFFFFFFFF else v), 16, "BAD_VERSION", what,
             gguf([ARCH], ONE, version=v))
    big = b"GGUF" + struct.pack(">IQQ", 3, 1, 1) + b"\0" * 64
    case("c16_big_endian.gguf", 16, "BAD_VERSION", "version 3 written big-endian", big)

    # ---- 17: counts
    for n, tag in [(2**63, "2pow63"), (2**64 - 1, "u64max")]:
        case("c17_tensor_count_%s.gguf" % tag, 17, "TOO_MANY", "tensor count %s" % tag,
             gguf([ARCH], ONE, n_tensors=n))
        case("c17_kv_count_%s.gguf" % tag, 17, "TOO_MANY", "key-value count %s" % tag,
             gguf([ARCH], ONE, n_kv=n))
    case("c17_tensor_count_past_eof.gguf", 17, "TRUNCATED_HEADER",
         "1000 tensors declared in a 144-byte file", gguf([ARCH], ONE, n_tensors=1000))
    case("c17_kv_count_past_eof.gguf", 17, "TRUNCATED_HEADER",
         "100 key-value pairs declared in a 144-byte file", gguf([ARCH], ONE, n_kv=100))

    # ---- 18: string lengths, keys
    u64max = struct.pack("<Q", 2**64 - 1)
    case("c18_key_len_u64max.gguf", 18, "TRUNCATED_HEADER", "key length 2^64-1",
         gguf([u64max + b"general.architecture" + struct.pack("<I", STRING) + s("llama")], ONE))
    case("c18_key_len_past_eof.gguf", 18, "TRUNCATED_HEADER", "key length 1000, about 100 bytes left",
         gguf([struct.pack("<Q", 1000) + b"general.architecture" + struct.pack("<I", STRING) +
               s("llama")], ONE))
    case("c18_value_len_u64max.gguf", 18, "TRUNCATED_HEADER", "string value length 2^64-1",
         gguf([s("general.architecture") + struct.pack("<I", STRING) + u64max + b"llama"], ONE))
    case("c18_value_len_one_past.gguf", 18, "TRUNCATED_HEADER",
         "string value one byte longer than the file",
         gguf([s("general.name") + struct.pack("<I", STRING) + struct.pack("<Q", 5) + b"abcd"],
              header_only=True))
    case("c18_array_string_len_u64max.gguf", 18, "TRUNCATED_HEADER",
         "string of length 2^64-1 inside an array",
         gguf([ARCH, s("tokenizer.ggml.tokens") + struct.pack("<IIQ", ARRAY, STRING, 2) + s("a") +
               u64max + b"b"], ONE))
    case("c18_tensor_name_len_u64max.gguf", 18, "BAD_TENSOR", "tensor name length 2^64-1",
         gguf([ARCH], ONE).replace(s("a") + struct.pack("<I", 1), u64max + b"a" +
                                   struct.pack("<I", 1)))
    case("c18_empty_key.gguf", 18, "BAD_METADATA", "key \"\"",
         gguf([ARCH, kv("", U32, 7)], ONE))
    case("c18_key_nul.gguf", 18, "BAD_METADATA", "NUL byte inside a key",
         gguf([ARCH, kv(b"general.n\0me", STRING, "x")], ONE))

    # ---- 19: value types, arrays
    for vt, tag in [(13, "13"), (0xFFFFFFFF, "u32max")]:
        case("c19_value_type_%s.gguf" % tag, 19, "BAD_METADATA", "value type %s" % tag,
             gguf([ARCH, s("k") + struct.pack("<I", vt) + b"\0" * 8], ONE))
    case("c19_array_type_13.gguf", 19, "BAD_METADATA", "array element type 13",
         gguf([ARCH, s("k") + struct.pack("<IIQ", ARRAY, 13, 1) + b"\0" * 8], ONE))
    case("c19_nested_array.gguf", 19, "BAD_METADATA", "array of arrays",
         gguf([ARCH, s("k") + struct.pack("<IIQ", ARRAY, ARRAY, 1) +
               struct.pack("<IQ", U8, 1) + b"\x05"], ONE))
    case("c19_array_u64_overflow.gguf", 19, "OVERFLOW", "2^61 u64 elements: 2^64 bytes",
         gguf([ARCH, s("k") + struct.pack("<IIQ", ARRAY, U64, 2**61) + b"\0" * 8], ONE))
    case("c19_array_f64_overflow.gguf", 19, "OVERFLOW", "2^64-1 f64 elements",
         gguf([ARCH, s("k") + struct.pack("<IIQ", ARRAY, F64, 2**64 - 1) + b"\0" * 8], ONE))
    case("c19_array_string_overflow.gguf", 19, "OVERFLOW",
         "2^61 strings: 2^64 bytes of lengths alone",
         gguf([ARCH, s("k") + struct.pack("<IIQ", ARRAY, STRING, 2**61) + s("x")], ONE))
    case("c19_array_past_eof.gguf", 19, "TRUNCATED_HEADER", "1,000,000 u8 elements in a small file",
         gguf([ARCH, s("k") + struct.pack("<IIQ", ARRAY, U8, 10**6) + b"\0" * 8], ONE))
    case("c19_array_strings_past_eof.gguf", 19, "TRUNCATED_HEADER",
         "100,000 strings in a small file",
         gguf([ARCH, s("k") + struct.pack("<IIQ", ARRAY, STRING, 10**5) + s("x")], ONE))
    case("c19_bool_2.gguf", 19, "BAD_METADATA", "bool value 2",
         gguf([ARCH, kv("k", BOOL, 2)], ONE))
    case("c19_bool_array_255.gguf", 19, "BAD_METADATA", "bool array element 255",
         gguf([ARCH, kv("k", ARRAY, (BOOL, [1, 0, 255]))], ONE))

    # ---- 20: duplicates, names
    case("c20_dup_key.gguf", 20, "DUPLICATE_KEY", "general.architecture twice",
         gguf([ARCH, kv("general.name", STRING, "x"), ARCH], ONE))
    case("c20_dup_tensor.gguf", 20, "DUPLICATE_KEY", "tensor 'a' twice",
         gguf([ARCH], [("a", [4], 0), ("b", [8], 0), ("a", [4], 0)]))
    case("c20_name_64.gguf", 20, "BAD_TENSOR", "64-byte tensor name",
         gguf([ARCH], [("n" * 64, [4], 0)]))
    case("c20_name_empty.gguf", 20, "BAD_TENSOR", "tensor name \"\"",
         gguf([ARCH], [("", [4], 0)]))
    case("c20_name_nul.gguf", 20, "BAD_TENSOR", "NUL byte inside a tensor name",
         gguf([ARCH], [("a\0b", [4], 0)]))

    # ---- 21: general.alignment
    for tag, enc, what in [
        ("u64", kv("general.alignment", U64, 32), "a u64"),
        ("i32", kv("general.alignment", I32, 32), "an i32"),
        ("string", kv("general.alignment", STRING, "32"), "a string"),
        ("array", kv("general.alignment", ARRAY, (U32, [32])), "an array of u32"),
        ("zero", kv("general.alignment", U32, 0), "0"),
        ("48", kv("general.alignment", U32, 48), "48, not a power of two"),
        ("u32max", kv("general.alignment", U32, 2**32 - 1), "2^32-1"),
    ]:
        case("c21_alignment_%s.gguf" % tag, 21, "BAD_METADATA", "general.alignment is " + what,
             gguf([ARCH, enc], ONE))

    # ---- 22: dimensions
    case("c22_ndims_0.gguf", 22, "BAD_TENSOR", "n_dims 0", gguf([ARCH], [("a", [], 0, 4)]))
    case("c22_ndims_5.gguf", 22, "BAD_TENSOR", "n_dims 5", gguf([ARCH], [("a", [1, 1, 1, 1, 4], 0)]))
    case("c22_dim_zero.gguf", 22, "BAD_TENSOR", "ne [0]", gguf([ARCH], [("a", [0], 0)]))
    case("c22_dim_zero_inner.gguf", 22, "BAD_TENSOR", "ne [4, 0] (a division by zero elsewhere)",
         gguf([ARCH], [("a", [4, 0], 0)]))
    case("c22_dim_negative.gguf", 22, "BAD_TENSOR", "ne [4, -1] (2^64-1 as read)",
         gguf([ARCH], [("a", [4, -1], 0, 16)]))
    case("c22_dim_2pow63.gguf", 22, "BAD_TENSOR", "ne [2^63]",
         gguf([ARCH], [("a", [2**63], 0, 16)]))
    case("c22_elements_overflow.gguf", 22, "OVERFLOW", "ne [2^32, 2^32]: 2^64 elements",
         gguf([ARCH], [("a", [2**32, 2**32], 0, 16)]))
    case("c22_elements_2pow63.gguf", 22, "OVERFLOW", "ne [2^62, 2]: 2^63 elements",
         gguf([ARCH], [("a", [2**62, 2], 24, 16)]))
    case("c22_bytes_overflow.gguf", 22, "OVERFLOW", "F64 ne [2^61]: 2^64 bytes",
         gguf([ARCH], [("a", [2**61], 28, 16)]))

    # ---- 23: tensor types
    for gt, tag, status, what in [
        (43, "43", "BAD_DTYPE", "ggml type 43 (unknown)"),
        (0xFFFFFFFF, "u32max", "BAD_DTYPE", "ggml type 2^32-1"),
        (4, "retired_4", "BAD_DTYPE", "ggml type 4 (Q4_2, retired)"),
        (31, "retired_31", "BAD_DTYPE", "ggml type 31 (Q4_0_4_4, retired from GGUF)"),
        (36, "retired_36", "BAD_DTYPE", "ggml type 36 (IQ4_NL_4_4, retired from GGUF)"),
    ]:
        case("c23_type_%s.gguf" % tag, 23, status, what, gguf([ARCH], [("a", [32], gt, 34)]))
    case("c23_q8_0_ne0_31.gguf", 23, "SIZE_MISMATCH", "Q8_0 with ne[0] = 31",
         gguf([ARCH], [("a", [31, 2], 8, 68)]))
    case("c23_q4_k_ne0_128.gguf", 23, "SIZE_MISMATCH", "Q4_K with ne[0] = 128 (block 256)",
         gguf([ARCH], [("a", [128, 2], 12, 144)]))
    case("c23_q8_0_blocks_on_ne1.gguf", 23, "SIZE_MISMATCH",
         "Q8_0 [16, 64]: 1024 elements, but ne[0] is not a whole block",
         gguf([ARCH], [("a", [16, 64], 8, 1088)]))

    # ---- 24: offsets and the data section
    two = [("a", [16], 0), ("b", [8], 0)]  # 64 and 32 bytes
    case("c24_unaligned.gguf", 24, "BAD_OFFSETS", "second tensor at 68 with alignment 32",
         gguf([ARCH], two, offsets=[0, 68]))
    case("c24_first_not_zero.gguf", 24, "LAYOUT", "first tensor at 32",
         gguf([ARCH], two, offsets=[32, 96], data=b"\0" * 32 + pattern(64) + pattern(32)))
    case("c24_gap.gguf", 24, "LAYOUT", "32 bytes between the two tensors",
         gguf([ARCH], two, offsets=[0, 96], data=pattern(64) + b"\0" * 32 + pattern(32)))
    case("c24_overlap.gguf", 24, "LAYOUT", "'b' starts inside 'a'",
         gguf([ARCH], two, offsets=[0, 32]))
    case("c24_same_offset.gguf", 24, "LAYOUT", "'b' at the offset of 'a'",
         gguf([ARCH], two, offsets=[0, 0]))
    case("c24_out_of_order.gguf", 24, "LAYOUT", "'c' before 'b'",
         gguf([ARCH], [("a", [16], 0), ("b", [8], 0), ("c", [8], 0)], offsets=[0, 64, 32]))
    case("c24_truncated.gguf", 24, "TRUNCATED", "data section one byte short",
         gguf([ARCH], two, pad_last=False, cut=1))
    case("c24_no_data.gguf", 24, "TRUNCATED", "header only",
         gguf([ARCH], two, data=b""))
    case("c24_wraps.gguf", 24, "BAD_OFFSETS", "F64 ne [2^61-1]: offset + size wraps",
         gguf([ARCH], [("a", [2**61 - 1], 28, 2**64 - 8)], data=pattern(64)))
    case("c24_trailing.gguf", 24, "TRAILING_BYTES", "one byte after the last tensor's padding",
         gguf([ARCH], two, trailing=b"x"))
    case("c24_trailing_no_tensors.gguf", 24, "TRAILING_BYTES",
         "33 bytes after a header without tensors", gguf([ARCH], [], data=b"\0" * 33))

    # ---- valid files
    scalars = [
        kv("t.u8", U8, 255), kv("t.i8", I8, -128), kv("t.u16", U16, 65535),
        kv("t.i16", I16, -32768), kv("t.u32", U32, 4294967295), kv("t.i32", I32, -2147483648),
        kv("t.f32", F32, 3.5), kv("t.bool", BOOL, 1), kv("t.string", STRING, "h\u00e9llo"),
        kv("t.u64", U64, 2**64 - 1), kv("t.i64", I64, -2**63), kv("t.f64", F64, -0.1),
        kv("t.string_nul", STRING, b"a\0b"), kv("t.string_empty", STRING, ""),
    ]
    arrays = [
        kv("a.u8", ARRAY, (U8, [0, 1, 255])), kv("a.i8", ARRAY, (I8, [-1, 2])),
        kv("a.u16", ARRAY, (U16, [65535])), kv("a.i16", ARRAY, (I16, [-2, 3, -4])),
        kv("a.u32", ARRAY, (U32, [7, 8])), kv("a.i32", ARRAY, (I32, [-5])),
        kv("a.f32", ARRAY, (F32, [0.5, -2.0])), kv("a.bool", ARRAY, (BOOL, [1, 0, 1, 1])),
        kv("a.string", ARRAY, (STRING, ["<unk>", "", "\u2581the"])),
        kv("a.u64", ARRAY, (U64, [2**64 - 1, 0])), kv("a.i64", ARRAY, (I64, [-2**63])),
        kv("a.f64", ARRAY, (F64, [1e300])), kv("a.empty", ARRAY, (U32, [])),
        kv("a.empty_strings", ARRAY, (STRING, [])),
    ]
    case("v_value_types.gguf", "-", "OK", "every value type, and arrays of each",
         gguf([ARCH] + scalars + arrays, ONE))
    types = sorted(GGML)
    case("v_tensor_types.gguf", "-", "OK",
         "one tensor of each ggml type, ne [2 blocks, 3]",
         gguf([ARCH], [("t_%s" % GGML[g][0], [2 * GGML[g][1], 3], g) for g in types]))
    case("v_version2.gguf", "-", "OK", "version 2", gguf([ARCH], two, version=2))
    case("v_empty.gguf", "-", "OK", "no tensors, no metadata, no padding (24 bytes)",
         gguf(header_only=True))
    case("v_no_tensors.gguf", "-", "OK", "metadata only, header padded",
         gguf([ARCH, kv("general.name", STRING, "x")]))
    case("v_alignment_64.gguf", "-", "OK", "general.alignment 64",
         gguf([ARCH, kv("general.alignment", U32, 64)], two + [("c", [3], 0)], alignment=64))
    case("v_alignment_1.gguf", "-", "OK", "general.alignment 1: tensors back to back",
         gguf([kv("general.alignment", U32, 1), ARCH], [("a", [3], 24), ("b", [5], 0)],
              alignment=1))
    case("v_name_63.gguf", "-", "OK", "63-byte tensor name", gguf([ARCH], [("n" * 63, [4], 0)]))
    case("v_last_unpadded.gguf", "-", "OK", "file ends at the last tensor's last byte",
         gguf([ARCH], [("a", [16], 0), ("b", [3], 0)], pad_last=False))
    case("v_dims.gguf", "-", "OK", "1 to 4 dimensions; ne reversed into the shape",
         gguf([ARCH], [("d1", [5], 0), ("d2", [3, 2], 0), ("d3", [2, 3, 4], 1),
                       ("d4", [64, 1, 2, 3], 8)]))

    # ---- geometry from typed metadata (formats/geometry.c, tests/test_geometry.c)
    geo = [kv("llama.block_count", U64, 2), kv("llama.embedding_length", I32, 64),
           kv("llama.feed_forward_length", U16, 128), kv("llama.attention.head_count", U8, 4),
           kv("llama.attention.head_count_kv", U32, 2), kv("llama.vocab_size", U32, 100),
           kv("llama.context_length", U64, 2048), kv("llama.rope.freq_base", F64, 10000.0),
           kv("llama.attention.layer_norm_rms_epsilon", F32, 1e-6)]
    case("g_typed.gguf", "-", "OK", "geometry keys of several integer and float types",
         gguf([ARCH] + geo, ONE))
    for tag, enc, what in [
        ("block_count_f32", kv("llama.block_count", F32, 2.0), "llama.block_count is an f32"),
        ("heads_negative", kv("llama.attention.head_count", I32, -4),
         "llama.attention.head_count is -4"),
        ("eps_array", kv("llama.attention.layer_norm_rms_epsilon", ARRAY, (F32, [1e-6])),
         "the epsilon is an array"),
        ("ffn_bool", kv("llama.feed_forward_length", BOOL, 1), "llama.feed_forward_length is a bool"),
    ]:
        def key_of(e):
            return e[8:8 + struct.unpack("<Q", e[:8])[0]]
        case("g_%s.gguf" % tag, "-", "OK (BAD_CONFIG geometry)", what,
             gguf([ARCH] + [g for g in geo if key_of(g) != key_of(enc)] + [enc], ONE))

    lines = [
        "# GGUF test data",
        "",
        "Handcrafted files, one per failure mode of docs/RELIABILITY.md cases 16-24, written by",
        "`../make_gguf_cases.py` (run it to regenerate; it rewrites this file too). Each bad",
        "file breaks one rule and is otherwise valid. Statuses are `HOIST_E_*` (or `HOIST_OK`);",
        "tests/test_gguf.c checks every row. The `v_*` and `g_*` files must load; the `g_*`",
        "files are model geometries for tests/test_geometry.c, which refuses the bad ones.",
        "Built at test time instead: a header above the 256 MiB limit (a sparse file,",
        "HEADER_TOO_LARGE), a directory and a FIFO named .gguf (NOT_REGULAR), a missing file",
        "(OPEN).",
        "",
        "| file | case | expected status | what |",
        "|---|---|---|---|",
    ]
    for name, num, status, what in CASES:
        lines.append("| `%s` | %s | %s | %s |" % (name, num, status, what.replace("|", "\\|")))
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
