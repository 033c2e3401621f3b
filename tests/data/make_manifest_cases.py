#!/usr/bin/env python3
"""Writes the handcrafted manifests under tests/data/manifest/: each breaks one rule of the
manifest format (formats/manifest.h) and is otherwise valid, plus README.md and cases.tsv, which
test_manifest.c reads. Every one must be refused with HOIST_E_BAD_MANIFEST (naming the key or
entry) before it is compared with any model. Run: python3 tests/data/make_manifest_cases.py
"""
import copy
import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "manifest")
H = "0123456789abcdef"

BASE = {
    "format": "hoist-manifest",
    "version": 1,
    "hoist_version": "0.1.0",
    "hash": "xxh3-64",
    "chunk_bytes": 4096,
    "files": [{"name": "model.safetensors", "size": 9000, "header_bytes": 100,
               "header_xxh3": H, "first_chunk": 0, "chunks": [H, H, H]}],
    "tensors": [{"name": "w", "file": 0, "offset": 100, "bytes": 8900, "xxh3": H}],
}

CASES = []  # (file, expected status, message substring, what)


def case(name, status, needle, what, doc=None, text=None):
    CASES.append((name, status, needle, what))
    if text is None:
        text = json.dumps(doc, indent=1)
    with open(os.path.join(OUT, name), "w") as f:
        f.write(text)


def edit(fn):
    d = copy.deepcopy(BASE)
    fn(d)
    return d


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    case("good.hoist-sum", "OK", "", "valid (for a model it does not describe)", BASE)
    bad = "BAD_MANIFEST"
    case("not_json.hoist-sum", bad, "malformed JSON", "truncated JSON", text='{"format": ')
    case("top_array.hoist-sum", bad, "not an object", "top level is an array", text="[]")
    case("duplicate_key.hoist-sum", bad, "duplicate", "\"version\" twice",
         text=json.dumps(BASE).replace('"version": 1', '"version": 1, "version": 1'))
    case("wrong_format.hoist-sum", bad, "format", "format \"safetensors\"",
         edit(lambda d: d.update(format="safetensors")))
    case("version_2.hoist-sum", bad, "version 2", "version 2", edit(lambda d: d.update(version=2)))
    case("hash_sha256.hoist-sum", bad, "sha256", "hash \"sha256\"",
         edit(lambda d: d.update(hash="sha256")))
    case("unknown_key.hoist-sum", bad, "unknown key", "an extra top-level key",
         edit(lambda d: d.update(extra=1)))
    case("missing_files.hoist-sum", bad, "\"files\"", "no \"files\"",
         edit(lambda d: d.pop("files")))
    case("files_object.hoist-sum", bad, "arrays", "\"files\" is an object",
         edit(lambda d: d.update(files={})))
    case("chunk_bytes_odd.hoist-sum", bad, "chunk_bytes", "chunk_bytes 5000",
         edit(lambda d: d.update(chunk_bytes=5000)))
    case("chunk_bytes_2g.hoist-sum", bad, "chunk_bytes", "chunk_bytes 2^31",
         edit(lambda d: d.update(chunk_bytes=2 ** 31)))
    case("chunk_bytes_real.hoist-sum", bad, "not an integer", "chunk_bytes 4096.0",
         text=json.dumps(BASE).replace('"chunk_bytes": 4096', '"chunk_bytes": 4096.0'))
    case("file_unknown_key.hoist-sum", bad, "files[0]", "an extra key in a file entry",
         edit(lambda d: d["files"][0].update(mtime=0)))
    case("file_name_slash.hoist-sum", bad, "not a file name", "name \"../model.safetensors\"",
         edit(lambda d: d["files"][0].update(name="../model.safetensors")))
    case("file_name_empty.hoist-sum", bad, "not a file name", "name \"\"",
         edit(lambda d: d["files"][0].update(name="")))
    case("file_name_nul.hoist-sum", bad, "NUL", "a \\u0000 in the name",
         edit(lambda d: d["files"][0].update(name="model\u0000.safetensors")))
    case("size_negative.hoist-sum", bad, "negative", "size -1",
         edit(lambda d: d["files"][0].update(size=-1)))
    case("size_string.hoist-sum", bad, "not an integer", "size \"9000\"",
         edit(lambda d: d["files"][0].update(size="9000")))
    case("header_past_size.hoist-sum", bad, "header of", "header_bytes above the size",
         edit(lambda d: d["files"][0].update(header_bytes=9001)))
    case("too_many_chunks.hoist-sum", bad, "do not fit", "5 chunks for 9000 bytes",
         edit(lambda d: d["files"][0].update(chunks=[H] * 5)))
    case("first_chunk_huge.hoist-sum", bad, "do not fit", "first_chunk 2^62",
         edit(lambda d: d["files"][0].update(first_chunk=2 ** 62)))
    case("chunks_object.hoist-sum", bad, "not an array", "\"chunks\" is an object",
         edit(lambda d: d["files"][0].update(chunks={})))
    case("hash_upper.hoist-sum", bad, "hex", "a chunk hash in upper case",
         edit(lambda d: d["files"][0]["chunks"].__setitem__(1, H.upper())))
    case("hash_short.hoist-sum", bad, "hex", "a 15-digit chunk hash",
         edit(lambda d: d["files"][0]["chunks"].__setitem__(2, H[:15])))
    case("hash_number.hoist-sum", bad, "hex", "a header hash as a number",
         edit(lambda d: d["files"][0].update(header_xxh3=12345)))
    case("tensor_file_range.hoist-sum", bad, "file 1 of 1", "a tensor in file 1 of 1",
         edit(lambda d: d["tensors"][0].update(file=1)))
    case("tensor_past_file.hoist-sum", bad, "outside", "a tensor ending past its file",
         edit(lambda d: d["tensors"][0].update(bytes=8901)))
    case("tensor_offset_overflow.hoist-sum", bad, "outside", "offset + bytes past 2^64",
         edit(lambda d: d["tensors"][0].update(offset=2 ** 63 - 1, bytes=2 ** 63 - 1)))
    case("tensor_name_empty.hoist-sum", bad, "tensor name", "a tensor named \"\"",
         edit(lambda d: d["tensors"][0].update(name="")))
    case("tensor_missing_hash.hoist-sum", bad, "\"xxh3\"", "a tensor without \"xxh3\"",
         edit(lambda d: d["tensors"][0].pop("xxh3")))

    with open(os.path.join(OUT, "cases.tsv"), "w") as f:
        for name, status, needle, _ in CASES:
            f.write("%s\t%s\t%s\n" % (name, status, needle))
    lines = ["# Manifests, handcrafted", "",
             "Written by `make_manifest_cases.py` beside this directory (run it to regenerate; it",
             "rewrites this file and `cases.tsv`, which test_manifest.c reads). Each breaks one",
             "rule of the manifest format (formats/manifest.h) and is otherwise valid; every one",
             "is refused by `hoist_model_verify` and by a load with `HOIST_VERIFY_MANIFEST` before",
             "it is compared with the model. Manifests that are valid but describe other files",
             "(another model, a changed size or header, a flipped byte) are built by the tests",
             "from a real `hoist sum`.", "",
             "| file | expected status | what |", "|---|---|---|"]
    for name, status, _, what in CASES:
        lines.append("| `%s` | %s | %s |" % (name, status, what.replace("|", "\\|")))
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
