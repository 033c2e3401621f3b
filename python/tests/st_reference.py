"""A reference reader and writer of the safetensors format, in pure Python (numpy only for
convenience in the tests), independent of libhoist: the tests compare hoist's bytes with it.

Format: 8-byte little-endian header length N, N bytes of JSON {name: {"dtype", "shape",
"data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the data section; offsets are
relative to its start. A sharded checkpoint has model.safetensors.index.json with a
"weight_map" {name: shard file}.
"""

import json
import os
import struct

# safetensors dtype name -> bits per element
BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32,
    "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}


def nbytes(dtype, shape):
    n = 1
    for d in shape:
        n *= d
    bits = n * BITS[dtype]
    assert bits % 8 == 0, (dtype, shape)
    return bits // 8


def write(path, tensors, metadata=None, align=8):
    """tensors: list of (name, dtype, shape, data bytes), written in that order. The header is
    padded with spaces to a multiple of `align` bytes, as the reference implementation does."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    for name, dtype, shape, data in tensors:
        assert len(data) == nbytes(dtype, shape), name
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % align)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, _, data in tensors:
            f.write(data)


def read_file(path):
    """{name: (dtype, shape tuple, bytes)} and the metadata dict (or None) of one file."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack_from("<Q", blob, 0)
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", None)
    base = 8 + n
    out = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        data = blob[base + begin:base + end]
        assert len(data) == nbytes(entry["dtype"], entry["shape"]), name
        out[name] = (entry["dtype"], tuple(entry["shape"]), data)
    return out, metadata


def read_model(path):
    """Every tensor of a file, a model directory or an index, as read_file returns them, merged
    over the shards; the metadata, merged over the shards (the first shard with a key wins, in
    the order the index first names them)."""
    if os.path.isdir(path):
        index = os.path.join(path, "model.safetensors.index.json")
        path = index if os.path.exists(index) else os.path.join(path, "model.safetensors")
    if not path.endswith(".json"):
        return read_file(path)
    with open(path) as f:
        weight_map = json.load(f)["weight_map"]
    out, metadata = {}, {}
    for shard in dict.fromkeys(weight_map.values()):
        tensors, meta = read_file(os.path.join(os.path.dirname(path), shard))
        out.update(tensors)
        for key, value in (meta or {}).items():
            metadata.setdefault(key, value)
    assert set(out) == set(weight_map)
    return out, metadata or None
