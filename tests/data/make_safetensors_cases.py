#!/usr/bin/env python3
"""Writes the handcrafted safetensors test files under tests/data/safetensors/ and the table in
tests/data/README.md. Each bad file breaks exactly one rule of the format (docs/RELIABILITY.md cases
1-15); everything else in it is valid, so that removing the check for that rule would let the
file through (or fail differently). Run from anywhere: python3 tests/data/make_safetensors_cases.py

Cases too large to commit (100k-deep nesting, 4 KB names) and those that need the file system
(FIFOs, symlinks, /dev/zero) are built by the tests themselves.
"""
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "safetensors")

CASES = []  # (relative name, RELIABILITY case, expected status, what it is)

# dtype name -> bits, in the reference list's order
DTYPES = [("BOOL", 8), ("F4", 4), ("F6_E2M3", 6), ("F6_E3M2", 6), ("U8", 8), ("I8", 8),
          ("F8_E5M2", 8), ("F8_E4M3", 8), ("F8_E8M0", 8), ("F8_E4M3FNUZ", 8),
          ("F8_E5M2FNUZ", 8), ("I16", 16), ("U16", 16), ("F16", 16), ("BF16", 16), ("I32", 32),
          ("U32", 32), ("F32", 32), ("C64", 64), ("F64", 64), ("I64", 64), ("U64", 64)]


def raw(header_len, header, data=b""):
    """Header length field, header bytes and data, exactly as given."""
    if isinstance(header, str):
        header = header.encode()
    return struct.pack("<Q", header_len) + header + data


def st(header, data=b""):
    """A safetensors file; header is a str (written verbatim) or a dict (compact JSON)."""
    if not isinstance(header, (str, bytes)):
        header = json.dumps(header, separators=(",", ":"), ensure_ascii=False)
    if isinstance(header, str):
        header = header.encode()
    return raw(len(header), header, data)


def t(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def pattern(n):
    return bytes((i * 7 + 3) & 0xFF for i in range(n))


def case(name, num, status, what, content):
    CASES.append((name, num, status, what))
    path = os.path.join(OUT, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content)


def index_case(dirname, num, status, what, weight_map, shards, index_text=None, metadata=None):
    """A directory with model.safetensors.index.json and the given shard files."""
    d = os.path.join(OUT, dirname)
    os.makedirs(d, exist_ok=True)
    for name, content in shards.items():
        p = os.path.join(d, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(content)
    if index_text is None:
        doc = {"metadata": metadata if metadata is not None else {"total_size": 0},
               "weight_map": weight_map}
        index_text = json.dumps(doc, indent=2) + "\n"
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        f.write(index_text)
    CASES.append((dirname + "/", num, status, what))


def f32(name, n, begin):
    return name, t("F32", [n], begin, begin + 4 * n)


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    one = {"a": t("F32", [1], 0, 4)}

    # ---- 1: 0-7 bytes
    case("c01_empty.safetensors", 1, "TRUNCATED_HEADER", "0-byte file", b"")
    case("c01_one_byte.safetensors", 1, "TRUNCATED_HEADER", "1-byte file", b"\x02")
    case("c01_seven_bytes.safetensors", 1, "TRUNCATED_HEADER", "7 bytes of a length field",
         b"\x02\x00\x00\x00\x00\x00\x00")

    # ---- 2: header length above 100,000,000
    case("c02_len_100000001.safetensors", 2, "HEADER_TOO_LARGE", "N = 100,000,001",
         raw(100000001, "{}"))
    case("c02_len_u64_max.safetensors", 2, "HEADER_TOO_LARGE", "N = 2^64-1",
         raw(2**64 - 1, "{}"))
    case("c02_len_2pow63.safetensors", 2, "HEADER_TOO_LARGE", "N = 2^63 (negative if signed)",
         raw(2**63, "{}"))

    # ---- 3: 8+N past the end of the file
    case("c03_len_past_eof.safetensors", 3, "BAD_HEADER_LEN", "N = 64, 2 header bytes",
         raw(64, "{}"))
    case("c03_len_one_past.safetensors", 3, "BAD_HEADER_LEN", "N one more than the bytes left",
         raw(3, "{}"))
    case("c03_len_at_limit.safetensors", 3, "BAD_HEADER_LEN",
         "N = 100,000,000 (the limit itself is allowed), file short", raw(100000000, "{}"))

    # ---- 4: malformed JSON
    good_entry = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}'
    case("c04_not_utf8.safetensors", 4, "BAD_JSON", "0xff byte in a tensor name",
         st(b'{"a\xff":' + good_entry.encode() + b"}", pattern(4)))
    case("c04_overlong_utf8.safetensors", 4, "BAD_JSON", "overlong UTF-8 encoding of '/'",
         st(b'{"a\xc0\xaf":' + good_entry.encode() + b"}", pattern(4)))
    case("c04_lone_surrogate.safetensors", 4, "BAD_JSON", "\\ud800 escape without its pair",
         st('{"a\\ud800":' + good_entry + "}", pattern(4)))
    case("c04_truncated_json.safetensors", 4, "BAD_JSON", "JSON cut mid-entry",
         st('{"a":{"dtype":"F32","shape":[1],"data_of', pattern(4)))
    case("c04_empty_header.safetensors", 4, "BAD_JSON", "N = 0", raw(0, ""))
    case("c04_top_array.safetensors", 4, "BAD_JSON", "top level is an array", st("[]"))
    case("c04_top_string.safetensors", 4, "BAD_JSON", "top level is a string", st('"{}"'))
    case("c04_top_number.safetensors", 4, "BAD_JSON", "top level is a number", st("42"))
    case("c04_trailing_garbage.safetensors", 4, "BAD_JSON", "text after the object",
         st('{"a":' + good_entry + "} x", pattern(4)))
    case("c04_nul_byte.safetensors", 4, "BAD_JSON", "raw NUL byte inside a name",
         st(b'{"a\x00b":' + good_entry.encode() + b"}", pattern(4)))
    case("c04_nul_escape.safetensors", 4, "BAD_JSON", "\\u0000 inside a name",
         st('{"a\\u0000b":' + good_entry + "}", pattern(4)))

    # ---- 5: duplicate keys (each file would parse if duplicates were silently merged)
    case("c05_dup_tensor.safetensors", 5, "DUPLICATE_KEY", "tensor 'a' twice, same entry",
         st('{"a":' + good_entry + ',"a":' + good_entry + "}", pattern(4)))
    case("c05_dup_metadata_key.safetensors", 5, "DUPLICATE_KEY", "__metadata__ key 'k' twice",
         st('{"__metadata__":{"k":"1","k":"2"},"a":' + good_entry + "}", pattern(4)))
    case("c05_dup_metadata_object.safetensors", 5, "DUPLICATE_KEY", "__metadata__ twice",
         st('{"__metadata__":{"k":"1"},"a":' + good_entry + ',"__metadata__":{"j":"2"}}',
            pattern(4)))

    # ---- 6: __metadata__ values
    for name, meta, what in [
        ("number", {"k": 1}, "value is a number"),
        ("object", {"k": {"x": "y"}}, "value is an object"),
        ("null_value", {"format": "pt", "k": None}, "value is null"),
        ("array_value", {"k": ["a"]}, "value is an array"),
        ("bool_value", {"k": True}, "value is true"),
        ("not_object", "pt", "__metadata__ is a string"),
        ("array", [], "__metadata__ is an array"),
    ]:
        case("c06_meta_%s.safetensors" % name, 6, "BAD_METADATA", what,
             st({"__metadata__": meta, **one}, pattern(4)))

    # ---- 7: dtype, shape, data_offsets: missing, unknown, wrong JSON types
    for name, dt, what in [("unknown", "F128", "dtype F128"), ("lowercase", "f32", "dtype f32"),
                           ("empty", "", "dtype \"\""), ("float32", "float32", "torch name"),
                           ("ggml_name", "Q8_0", "a ggml type, not a safetensors dtype")]:
        case("c07_dtype_%s.safetensors" % name, 7, "BAD_DTYPE", what,
             st({"a": t(dt, [1], 0, 4)}, pattern(4)))
    bad_tensor = [
        ("dtype_number", {"dtype": 17, "shape": [1], "data_offsets": [0, 4]}, "dtype is 17"),
        ("dtype_null", {"dtype": None, "shape": [1], "data_offsets": [0, 4]}, "dtype is null"),
        ("missing_dtype", {"shape": [1], "data_offsets": [0, 4]}, "no dtype"),
        ("missing_shape", {"dtype": "F32", "data_offsets": [0, 4]}, "no shape"),
        ("missing_offsets", {"dtype": "F32", "shape": [1]}, "no data_offsets"),
        ("shape_string", {"dtype": "F32", "shape": "1", "data_offsets": [0, 4]}, "shape \"1\""),
        ("shape_elem_string", {"dtype": "F32", "shape": ["1"], "data_offsets": [0, 4]},
         "shape [\"1\"]"),
        ("shape_elem_real", {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]},
         "shape [1.0]"),
        ("shape_elem_bool", {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]},
         "shape [true]"),
        ("shape_negative", {"dtype": "F32", "shape": [-1, -1], "data_offsets": [0, 4]},
         "shape [-1, -1] (product 1)"),
        ("shape_nine_dims", {"dtype": "F32", "shape": [1] * 9, "data_offsets": [0, 4]},
         "9 dimensions"),
        ("offsets_string", {"dtype": "F32", "shape": [1], "data_offsets": "0,4"},
         "data_offsets is a string"),
        ("offsets_three", {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 4]},
         "3 offsets"),
        ("offsets_one", {"dtype": "F32", "shape": [1], "data_offsets": [4]}, "1 offset"),
        ("offsets_elem_string", {"dtype": "F32", "shape": [1], "data_offsets": [0, "4"]},
         "offset \"4\""),
        ("offsets_object", {"dtype": "F32", "shape": [1], "data_offsets": {"0": 4}},
         "data_offsets is an object"),
        ("unknown_field", {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": 1},
         "extra field"),
        ("entry_array", ["F32", [1], [0, 4]], "entry is an array"),
        ("entry_null", None, "entry is null"),
    ]
    for name, entry, what in bad_tensor:
        case("c07_%s.safetensors" % name, 7, "BAD_TENSOR", what, st({"a": entry}, pattern(4)))
    case("c07_empty_name.safetensors", 7, "BAD_TENSOR", "tensor named \"\"",
         st({"": t("F32", [1], 0, 4)}, pattern(4)))

    # ---- 8: offsets
    case("c08_offset_negative.safetensors", 8, "BAD_OFFSETS", "data_offsets [-4, 0]",
         st({"a": t("F32", [1], -4, 0)}, pattern(4)))
    case("c08_offset_end_negative.safetensors", 8, "BAD_OFFSETS", "data_offsets [0, -4]",
         st({"a": t("U8", [0], 0, -4)}))
    case("c08_offset_fractional.safetensors", 8, "BAD_OFFSETS", "data_offsets [0, 4.0]",
         st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}}', pattern(4)))
    case("c08_offset_fraction_half.safetensors", 8, "BAD_OFFSETS", "data_offsets [0, 3.5]",
         st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,3.5]}}', pattern(4)))
    case("c08_offset_exponent.safetensors", 8, "BAD_OFFSETS", "data_offsets [0, 4e0]",
         st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4e0]}}', pattern(4)))
    case("c08_offset_above_2pow64.safetensors", 8, "BAD_OFFSETS",
         "data_offsets [0, 2^64+4]",
         st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551620]}}',
            pattern(4)))
    case("c08_offset_2pow64_wraps.safetensors", 8, "BAD_OFFSETS",
         "data_offsets [2^64, 2^64+4] (mod 2^64: [0, 4])",
         st('{"a":{"dtype":"F32","shape":[1],'
            '"data_offsets":[18446744073709551616,18446744073709551620]}}', pattern(4)))
    case("c08_offset_2pow63.safetensors", 8, "BAD_OFFSETS", "data_offsets [0, 2^63]",
         st('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,9223372036854775808]}}',
            pattern(1)))
    case("c08_offset_real_overflow.safetensors", 8, "BAD_OFFSETS", "data_offsets [0, 1e400]",
         st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,1e400]}}', pattern(4)))
    case("c08_begin_after_end.safetensors", 8, "BAD_OFFSETS", "data_offsets [8, 4]",
         st({"b": t("F32", [2], 0, 8), "a": t("F32", [1], 8, 4)}, pattern(8)))

    # ---- 9: layout
    case("c09_not_at_zero.safetensors", 9, "LAYOUT", "only tensor at [4, 8]",
         st({"a": t("F32", [1], 4, 8)}, pattern(8)))
    case("c09_gap.safetensors", 9, "LAYOUT", "[0, 4] then [8, 12]",
         st({"a": t("F32", [1], 0, 4), "b": t("F32", [1], 8, 12)}, pattern(12)))
    case("c09_overlap.safetensors", 9, "LAYOUT", "[0, 8] and [4, 12]",
         st({"a": t("U8", [8], 0, 8), "b": t("U8", [8], 4, 12)}, pattern(12)))
    case("c09_same_range.safetensors", 9, "LAYOUT", "three tensors on [0, 4]",
         st({"a": t("F32", [1], 0, 4), "b": t("F32", [1], 0, 4), "c": t("F32", [1], 0, 4)},
            pattern(4)))
    case("c09_zero_size_astray.safetensors", 9, "LAYOUT", "zero-size tensor at 6 of [0, 8]",
         st({"a": t("F32", [1], 0, 4), "z": t("U8", [0], 6, 6), "b": t("F32", [1], 4, 8)},
            pattern(8)))

    # ---- 10: data section length
    case("c10_truncated.safetensors", 10, "TRUNCATED", "[0, 16] with 12 data bytes",
         st({"a": t("F32", [4], 0, 16)}, pattern(12)))
    case("c10_truncated_no_data.safetensors", 10, "TRUNCATED", "[0, 16] with no data",
         st({"a": t("F32", [4], 0, 16)}))
    case("c10_trailing.safetensors", 10, "TRAILING_BYTES (strict) / OK (lenient)",
         "[0, 16] with 17 data bytes", st({"a": t("F32", [4], 0, 16)}, pattern(17)))
    case("c10_trailing_empty.safetensors", 10, "TRAILING_BYTES (strict) / OK (lenient)",
         "{} header and 3 data bytes", st({}, pattern(3)))

    # ---- 11: size overflow
    case("c11_shape_overflow.safetensors", 11, "OVERFLOW", "F32 [2^32, 2^32, 16]",
         st({"a": t("F32", [2**32, 2**32, 16], 0, 0)}))
    case("c11_bits_overflow.safetensors", 11, "OVERFLOW",
         "F64 [2^61]: elements fit, bits do not",
         st({"a": t("F64", [2**61], 0, 2**63 - 1)}))
    case("c11_dim_2pow63.safetensors", 11, "OVERFLOW", "U8 [2^63] (beyond int64)",
         st('{"a":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,0]}}'))

    # ---- 12: byte length off by one
    case("c12_short_by_one.safetensors", 12, "SIZE_MISMATCH", "F32 [4] on [0, 15]",
         st({"a": t("F32", [4], 0, 15)}, pattern(15)))
    case("c12_long_by_one.safetensors", 12, "SIZE_MISMATCH", "F32 [4] on [0, 17]",
         st({"a": t("F32", [4], 0, 17)}, pattern(17)))
    case("c12_second_tensor.safetensors", 12, "SIZE_MISMATCH", "BF16 [2, 3] on [4, 15]",
         st({"a": t("F32", [1], 0, 4), "b": t("BF16", [2, 3], 4, 15)}, pattern(15)))

    # ---- 13: sub-byte sizes
    case("c13_f4_odd.safetensors", 13, "SIZE_MISMATCH", "F4 [3]: 12 bits",
         st({"a": t("F4", [3], 0, 2)}, pattern(2)))
    case("c13_f6_e2m3_one.safetensors", 13, "SIZE_MISMATCH", "F6_E2M3 [1]: 6 bits",
         st({"a": t("F6_E2M3", [1], 0, 1)}, pattern(1)))
    case("c13_f6_e3m2_six.safetensors", 13, "SIZE_MISMATCH", "F6_E3M2 [2, 3]: 36 bits",
         st({"a": t("F6_E3M2", [2, 3], 0, 5)}, pattern(5)))

    # ---- 14: valid edge cases
    case("v14_empty_header.safetensors", 14, "OK", "{} header, no tensors", st({}))
    case("v14_only_metadata.safetensors", 14, "OK", "only __metadata__",
         st({"__metadata__": {"format": "pt"}}))
    case("v14_metadata_null.safetensors", 14, "OK",
         "__metadata__ null (the reference reader reads it as none)",
         st({"__metadata__": None, **one}, pattern(4)))
    case("v14_metadata_order.safetensors", 14, "OK",
         "metadata z, a, m, b kept in file order; metadata after the tensors",
         st('{"a":' + good_entry + ',"__metadata__":{"z":"1","a":"2","m":"","b":"\\u00e9\\n"}}',
            pattern(4)))
    case("v14_zero_size.safetensors", 14, "OK", "zero-size tensors between and after others",
         st({"e": t("U8", [0], 12, 12), "b": t("F16", [2], 8, 12), "w": t("F32", [3, 0], 8, 8),
             "z": t("F32", [0], 8, 8), "a": t("F32", [2], 0, 8)}, pattern(12)))
    case("v14_all_zero_size.safetensors", 14, "OK", "only zero-size tensors, no data",
         st({"x": t("U8", [0], 0, 0), "y": t("F32", [0, 5], 0, 0),
             "h": t("F64", [0, 2**32, 2**32], 0, 0)}))
    case("v14_scalar.safetensors", 14, "OK", "rank-0 F32 and BF16",
         st({"s": t("F32", [], 0, 4), "u": t("BF16", [], 4, 6)}, pattern(6)))
    case("v14_padded_header.safetensors", 14, "OK",
         "header padded with spaces to 8 bytes, as the Python writer does",
         st('{"a":' + good_entry + '}' + " " * (8 - (len('{"a":' + good_entry + '}') % 8)),
            pattern(4)))
    case("v14_unicode_names.safetensors", 14, "OK", "UTF-8 names",
         st({"模型.ß": t("U8", [2], 0, 2), "\u00e9": t("I8", [1], 2, 3)}, pattern(3)))
    case("v14_sub_byte.safetensors", 14, "OK", "F4 [2], F6_E2M3 [4], F6_E3M2 [2, 4]",
         st({"f4": t("F4", [2], 0, 1), "e2": t("F6_E2M3", [4], 1, 4),
             "e3": t("F6_E3M2", [2, 4], 4, 10)}, pattern(10)))
    # every dtype, shape [4, 2], listed in reverse so the parser must sort by offset
    off, entries = 0, []
    for name, bits in DTYPES:
        nb = 8 * bits // 8
        entries.append(("t_" + name, t(name, [4, 2], off, off + nb)))
        off += nb
    case("v14_all_dtypes.safetensors", 14, "OK", "all 22 dtypes, shape [4, 2]",
         st(dict(reversed(entries)), pattern(off)))

    # ---- 15: sharded index
    s1 = st({"__metadata__": {"format": "pt", "shard": "1"},
             "model.embed.weight": t("F32", [2, 2], 0, 16),
             "model.norm.weight": t("F32", [2], 16, 24)}, pattern(24))
    s2 = st({"__metadata__": {"format": "pt", "shard": "2", "extra": "x"},
             "lm_head.weight": t("F16", [2, 2], 0, 8),
             "model.layers.0.w": t("BF16", [3], 8, 14)}, pattern(14))
    n1, n2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
    # shard 2 named first: the parser must sort the shards itself
    wm = {"lm_head.weight": n2, "model.embed.weight": n1, "model.norm.weight": n1,
          "model.layers.0.w": n2}
    shards = {n1: s1, n2: s2}
    index_case("index_good", 15, "OK", "2 shards + index", wm, shards,
               metadata={"total_size": 38})
    index_case("index_missing_shard", 15, "MISSING_SHARD", "shard 2 file absent", wm, {n1: s1})
    index_case("index_absent_tensor", 15, "BAD_INDEX", "listed tensor 'ghost' not in shard 1",
               {**wm, "ghost": n1}, shards)
    index_case("index_unlisted_tensor", 15, "BAD_INDEX",
               "shard 2 tensor 'model.layers.0.w' not in weight_map",
               {k: v for k, v in wm.items() if k != "model.layers.0.w"}, shards)
    index_case("index_wrong_shard", 15, "BAD_INDEX",
               "'model.norm.weight' listed under shard 2, found in shard 1",
               {**wm, "model.norm.weight": n2}, shards)
    index_case("index_dotdot", 15, "PATH_ESCAPE", "shard '../<name>'",
               {**wm, "model.norm.weight": "../" + n1}, shards)
    index_case("index_dotdot_nested", 15, "PATH_ESCAPE", "shard 'sub/../../<name>'",
               {**wm, "model.norm.weight": "sub/../../" + n1}, shards)
    index_case("index_absolute", 15, "PATH_ESCAPE", "shard '/etc/hostname'",
               {**wm, "model.norm.weight": "/etc/hostname"}, shards)
    dup2 = st({"lm_head.weight": t("F16", [2, 2], 0, 8),
               "model.layers.0.w": t("BF16", [3], 8, 14),
               "model.norm.weight": t("F32", [2], 14, 22)}, pattern(22))
    index_case("index_duplicate_tensor", 15, "DUPLICATE_KEY",
               "'model.norm.weight' in both shards", wm, {n1: s1, n2: dup2})
    text = json.dumps({"weight_map": wm}, indent=2)
    text = text.replace('"lm_head.weight": "%s"' % n2,
                        '"lm_head.weight": "%s",\n    "lm_head.weight": "%s"' % (n2, n2))
    index_case("index_duplicate_key", 15, "DUPLICATE_KEY", "weight_map key twice", wm, shards,
               index_text=text)
    index_case("index_no_weight_map", 15, "BAD_INDEX", "no weight_map", wm, shards,
               index_text='{"metadata": {"total_size": 38}}')
    index_case("index_weight_map_array", 15, "BAD_INDEX", "weight_map is an array", wm, shards,
               index_text='{"weight_map": []}')
    index_case("index_weight_map_number", 15, "BAD_INDEX", "a weight_map value is a number",
               {**wm, "model.norm.weight": 1}, shards)
    index_case("index_empty_shard_name", 15, "BAD_INDEX", "a weight_map value is \"\"",
               {**wm, "model.norm.weight": ""}, shards)
    index_case("index_metadata_string", 15, "BAD_INDEX", "metadata is a string", wm, shards,
               metadata="x")
    index_case("index_not_object", 15, "BAD_INDEX", "index is an array", wm, shards,
               index_text="[]")
    index_case("index_bad_json", 15, "BAD_JSON", "index JSON truncated", wm, shards,
               index_text='{"weight_map": {"a": ')
    index_case("index_bad_shard", 15, "TRUNCATED_HEADER", "shard 2 is 5 bytes", wm,
               {n1: s1, n2: b"\x01\x02\x03\x04\x05"})

    # ---- README
    lines = [
        "# Test data",
        "",
        "## safetensors/",
        "",
        "Handcrafted files, one per failure mode of docs/RELIABILITY.md cases 1-15, written by",
        "`make_safetensors_cases.py` (run it to regenerate; it rewrites this file too). Each bad",
        "file breaks one rule and is otherwise valid. Statuses are `HOIST_E_*` (or `HOIST_OK`).",
        "Built at test time instead (too large, or needs the file system): 100k-deep nesting",
        "(BAD_JSON), 4096/4097-byte names (OK/BAD_TENSOR), /dev/zero, a directory and a FIFO",
        "(NOT_REGULAR), a missing file (OPEN), a shard symlinked out of the model directory",
        "(PATH_ESCAPE).",
        "",
        "GGUF's cases (16-24) are in [gguf/README.md](gguf/README.md).",
        "",
        "| file | case | expected status | what |",
        "|---|---|---|---|",
    ]
    for name, num, status, what in CASES:
        lines.append("| `%s` | %d | %s | %s |" % (name, num, status, what.replace("|", "\\|")))
    with open(os.path.join(HERE, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
