"""hoist.load_file and hoist.safe_open on the host: bytes equal to a reference reader, dtypes,
shapes and strides, errors, and lifetimes (an arena is freed when its last view goes)."""

import ctypes
import os
import random
import shutil
import subprocess
import tempfile
import threading

import numpy as np
import pytest

import hoist
from hoist import _dlpack, _lib
import st_reference as ref

try:
    import torch
except ImportError:
    torch = None

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "safetensors")
PATHS = ["auto", "mmap", "stream", "uring"]

# Odd shapes: scalars, empty, one element, primes, unit dimensions, eight dimensions, sizes
# that straddle pages. The sub-byte types need whole bytes (F4: even counts; F6: multiples of 4).
SHAPES = [(), (0,), (1,), (7,), (3, 5), (2, 1, 3), (1, 1, 1, 1, 1, 1, 1, 1), (4097,), (3, 0, 5),
          (65, 63)]


def shapes_for(dtype):
    bits = ref.BITS[dtype]
    return [s for s in SHAPES if (int(np.prod(s)) * bits) % 8 == 0]


def make_tensors(seed, dtypes=None):
    rng = random.Random(seed)
    tensors = []
    for dtype in dtypes or sorted(ref.BITS):
        for k, shape in enumerate(shapes_for(dtype)):
            n = ref.nbytes(dtype, shape)
            data = bytes(rng.getrandbits(8) for _ in range(n))
            if dtype == "BOOL":  # numpy and torch bools are 0 or 1
                data = bytes(b & 1 for b in data)
            tensors.append(("%s.%d" % (dtype.lower(), k), dtype, shape, data))
    rng.shuffle(tensors)  # file order differs from name order
    return tensors


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="hoist-py-")
    yield d
    shutil.rmtree(d)


@pytest.fixture
def every_dtype(tmp):
    path = os.path.join(tmp, "every.safetensors")
    ref.write(path, make_tensors(1), metadata={"format": "pt", "note": "every dtype"})
    return path


def expected_shape(dtype, shape, nbytes):
    if dtype == "F4" and shape and shape[-1] % 2 == 0:
        return tuple(shape[:-1]) + (shape[-1] // 2,)
    if dtype in ("F4", "F6_E2M3", "F6_E3M2"):
        return (nbytes,)
    return tuple(shape)


def c_strides(shape, itemsize):
    """Strides of a new contiguous tensor as torch computes them (an empty dimension counts as
    1); numpy agrees for every array with elements."""
    strides, step = [], itemsize
    for d in reversed(shape):
        strides.append(step)
        step *= max(d, 1)
    return tuple(reversed(strides))


def assert_matches(arrays, reference):
    assert sorted(arrays) == sorted(reference)
    for name, (dtype, shape, data) in reference.items():
        a = arrays[name]
        want = expected_shape(dtype, shape, len(data))
        assert a.shape == want, name
        if a.size:  # numpy's strides of an empty array are not canonical (np.empty: zeros)
            assert a.strides == c_strides(want, a.itemsize) == np.empty(want, a.dtype).strides
        assert a.flags.c_contiguous and a.flags.writeable, name
        assert a.tobytes() == data, name


# ---- bytes, dtypes, shapes --------------------------------------------------------------------

@pytest.mark.parametrize("path_kind", PATHS)
def test_every_dtype_host(every_dtype, path_kind):
    reference, _ = ref.read_file(every_dtype)
    arrays = hoist.load_file(every_dtype, device="cpu", framework="np", path_kind=path_kind)
    assert list(arrays) == sorted(reference)  # safetensors' order: sorted names
    assert_matches(arrays, reference)


def test_numpy_dtypes_are_faithful(every_dtype):
    arrays = hoist.load_file(every_dtype, device="cpu", framework="np")
    native = {"BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "I16": np.int16,
              "U16": np.uint16, "I32": np.int32, "U32": np.uint32, "I64": np.int64,
              "U64": np.uint64, "F16": np.float16, "F32": np.float32, "F64": np.float64,
              "C64": np.complex64}
    raw = {"BF16": np.uint16, "F8_E5M2": np.uint8, "F8_E4M3": np.uint8, "F8_E8M0": np.uint8,
           "F8_E4M3FNUZ": np.uint8, "F8_E5M2FNUZ": np.uint8, "F4": np.uint8,
           "F6_E2M3": np.uint8, "F6_E3M2": np.uint8}
    assert set(native) | set(raw) == set(ref.BITS)
    ml = hoist._core._ml_dtypes
    for name, a in arrays.items():
        dtype = next(d for d in ref.BITS if name.startswith(d.lower() + "."))
        if dtype in native:
            assert a.dtype == np.dtype(native[dtype]) and not a.dtype.metadata, name
        elif ml is not None and dtype not in ("F4", "F6_E2M3", "F6_E3M2"):
            assert a.dtype.itemsize == np.dtype(raw[dtype]).itemsize, name
        else:  # the raw integer type, naming the real one
            assert a.dtype == np.dtype(raw[dtype]), name
            assert a.dtype.metadata == {"hoist_dtype": dtype}, name


def test_values_survive_interpretation(tmp):
    """Not only bytes: numbers read back as numbers (endianness, dtype codes)."""
    values = {"F32": np.array([1.5, -2.25, 3e30], "<f4"), "I64": np.array([-1, 2**40], "<i8"),
              "F16": np.array([0.5, -65504], "<f2"), "C64": np.array([1 + 2j, -3j], "<c8"),
              "U16": np.array([0, 65535], "<u2"), "BOOL": np.array([True, False])}
    path = os.path.join(tmp, "values.safetensors")
    ref.write(path, [(k, k, v.shape, v.tobytes()) for k, v in values.items()])
    arrays = hoist.load_file(path, device="cpu", framework="np")
    for k, v in values.items():
        np.testing.assert_array_equal(arrays[k], v)
    # bf16 raw view: the top half of an f32
    bf = np.array([1.0, -3.5, 2**-10], "<f4").view("<u4") >> 16
    ref.write(path, [("b", "BF16", (3,), bf.astype("<u2").tobytes())])
    b = hoist.load_file(path, device="cpu", framework="np")["b"]
    widened = (b.view(np.uint16).astype("<u4") << 16).view("<f4")
    np.testing.assert_array_equal(widened, [1.0, -3.5, 2**-10])


def gen_model(directory, *args):
    cli = os.environ.get("HOIST_CLI")
    if not cli:
        pytest.skip("HOIST_CLI (the hoist command) is not set: run through ctest")
    subprocess.run([cli, "gen", directory, "--quiet", *args], check=True)
    return directory


@pytest.mark.parametrize("dtype", ["bf16", "f16", "f32"])
def test_generated_sharded_model(tmp, dtype):
    model = gen_model(os.path.join(tmp, "m"), "--preset", "tiny", "--dtype", dtype,
                      "--shard-size", "64K")
    reference, metadata = ref.read_model(model)
    assert os.path.exists(os.path.join(model, "model.safetensors.index.json"))
    for target in (model, os.path.join(model, "model.safetensors.index.json")):
        with hoist.safe_open(target, framework="np") as f:
            assert len(f.files()) > 1
            assert f.keys() == sorted(reference)
            assert f.metadata() == metadata
            assert_matches({k: f.get_tensor(k) for k in f.keys()}, reference)


def test_quantized_gguf_is_raw_bytes(tmp):
    """Q8_0 tensors come back as their blocks' bytes, a row of blocks per row, named by
    get_dtype; the F32 and F16 tensors of the same file as their own dtypes."""
    model = gen_model(os.path.join(tmp, "q"), "--preset", "tiny", "--dtype", "q8_0",
                      "--format", "gguf")
    path = os.path.join(model, "model.gguf")
    with open(path, "rb") as fh:
        blob = fh.read()
    with hoist.safe_open(path, framework="np") as f:
        assert f.get_dtype("blk.0.attn_q.weight") == "Q8_0"
        q = f.get_tensor("blk.0.attn_q.weight")
        assert q.dtype == np.uint8 and q.dtype.metadata == {"hoist_dtype": "Q8_0"}
        assert q.shape == (64, 64 // 32 * 34)
        assert q.tobytes() in blob
        norm = f.get_tensor("blk.0.attn_norm.weight")
        assert norm.dtype == np.float32 and norm.shape == (64,)
        np.testing.assert_array_equal(norm, np.ones(64, np.float32))
        assert f.get_tensor("blk.0.ffn_down.weight").dtype == np.float16  # 172-wide rows
        assert len(f.tensors()) == len(f.keys())
    if torch is not None:
        t = hoist.load_file(path, device="cpu", framework="pt")["blk.0.attn_q.weight"]
        assert t.dtype == torch.uint8 and tuple(t.shape) == (64, 68)


def test_every_failure_is_a_hoist_error(every_dtype):
    """Argument errors the binding finds itself are HoistErrors too, and still the built-in
    kind callers may catch."""
    with pytest.raises(hoist.HoistError) as e:
        hoist.load_file(every_dtype, device="cpu", framework="np", verify="bogus")
    assert isinstance(e.value, ValueError) and e.value.name == "HOIST_E_INVALID_ARG"
    with hoist.safe_open(every_dtype, framework="np") as f:
        f.load()
        v = f._view(0)
        export = _dlpack.Export(f._weights.handle, v.data, v.device, _dlpack.KDL_UINT, 8, (1,))
    with pytest.raises(hoist.HoistError) as e:
        export.__dlpack__(copy=True)
    assert isinstance(e.value, BufferError)


def test_metadata_and_table_without_loading(every_dtype, tmp):
    reference, metadata = ref.read_file(every_dtype)
    before = hoist.live_weights()
    with hoist.safe_open(every_dtype, framework="np") as f:
        assert f.metadata() == metadata == {"format": "pt", "note": "every dtype"}
        assert f.keys() == sorted(reference)
        for name, (dtype, shape, _) in reference.items():
            assert f.get_dtype(name) == dtype
            assert f.get_shape(name) == list(shape)
        assert f.stats() is None
        assert hoist.live_weights() == before  # the table only: nothing loaded
        first = f.get_tensor(f.keys()[0])
        assert hoist.live_weights()[0] == before[0] + 1
        second = f.get_tensor(f.keys()[1])
        assert hoist.live_weights()[0] == before[0] + 1  # one load serves every tensor
        stats = f.stats()
        assert stats["bytes"] == sum(len(d) for _, _, d in reference.values())
        assert stats["path"] in ("mmap", "uring", "stream")
        del first, second
    no_meta = os.path.join(tmp, "nometa.safetensors")
    ref.write(no_meta, [("x", "U8", (3,), b"abc")])
    with hoist.safe_open(no_meta, framework="np") as f:
        assert f.metadata() is None


def test_concurrent_loads(tmp):
    paths = []
    for i in range(4):
        p = os.path.join(tmp, "c%d.safetensors" % i)
        ref.write(p, make_tensors(10 + i, ["F32", "BF16", "I8"]))
        paths.append(p)
    results, errors = {}, []

    def work(p):
        try:
            results[p] = hoist.load_file(p, device="cpu", framework="np", threads=2)
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for p in paths:
        assert_matches(results[p], ref.read_file(p)[0])


# ---- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("case, status, needle", [
    ("c01_seven_bytes.safetensors", "HOIST_E_TRUNCATED_HEADER", "7 bytes"),
    ("c02_len_u64_max.safetensors", "HOIST_E_HEADER_TOO_LARGE", "18446744073709551615"),
    ("c03_len_past_eof.safetensors", "HOIST_E_BAD_HEADER_LEN", "64"),
    ("c05_dup_tensor.safetensors", "HOIST_E_DUPLICATE_KEY", '"a"'),
    ("c07_dtype_unknown.safetensors", "HOIST_E_BAD_DTYPE", "F128"),
])
def test_bad_files_raise_hoist_status(case, status, needle):
    path = os.path.join(DATA, case)
    with pytest.raises(hoist.HoistError) as e:
        hoist.load_file(path, device="cpu", framework="np")
    err = e.value
    assert err.name == status
    assert err.status == _lib.status_code(status) < 0
    assert needle in err.message and case in err.message  # hoist_last_error: file and detail
    assert err.description and err.description in str(err) and status in str(err)


def test_missing_file(tmp):
    missing = os.path.join(tmp, "absent.safetensors")
    with pytest.raises(hoist.HoistError) as e:
        hoist.safe_open(missing, framework="np")
    assert e.value.name == "HOIST_E_OPEN" and missing in e.value.message


def test_bad_arguments(every_dtype):
    cases = [
        (dict(path_kind="bogus"), "HOIST_E_INVALID_ARG", "bogus"),
        (dict(device="gpu"), "HOIST_E_INVALID_ARG", "gpu"),
        (dict(device="cuda:0"), "HOIST_E_INVALID_ARG", "cpu"),  # numpy holds host memory only
        (dict(ram_budget="lots"), "HOIST_E_INVALID_ARG", "lots"),
        (dict(chunk_bytes=1000), "HOIST_E_INVALID_ARG", "4096"),
        (dict(ram_budget=1), "HOIST_E_BUDGET", "budget"),
    ]
    for kwargs, status, needle in cases:
        kwargs.setdefault("device", "cpu")
        with pytest.raises(hoist.HoistError) as e:
            hoist.load_file(every_dtype, framework="np", **kwargs)
        assert e.value.name == status, kwargs
        assert needle in e.value.message, (kwargs, e.value.message)


def test_get_tensor_errors(every_dtype):
    f = hoist.safe_open(every_dtype, framework="np")
    with pytest.raises(hoist.HoistError) as e:
        f.get_tensor("no.such.tensor")
    assert e.value.name == "HOIST_E_NOT_FOUND" and "no.such.tensor" in e.value.message
    f.close()
    f.close()  # idempotent
    with pytest.raises(hoist.HoistError) as e:
        f.get_tensor("u8.0")
    assert e.value.name == "HOIST_E_INVALID_ARG" and "closed" in e.value.message


@pytest.mark.skipif(torch is None, reason="needs torch")
def test_no_device_raises(every_dtype):
    if hoist.device_count() > 0:
        pytest.skip("a GPU is present")
    with pytest.raises(hoist.HoistError) as e:
        hoist.load_file(every_dtype, device="cuda:0")
    assert e.value.name == "HOIST_E_NO_DEVICE"


# ---- lifetimes ----------------------------------------------------------------------------------

def test_arena_lives_while_any_array_does(every_dtype):
    reference, _ = ref.read_file(every_dtype)
    base = hoist.live_weights()
    arrays = hoist.load_file(every_dtype, device="cpu", framework="np")
    count, nbytes = hoist.live_weights()
    assert count == base[0] + 1 and nbytes > base[1]
    keep = arrays["f32.4"]
    view = keep[1:, ::2]  # a numpy view of a view keeps the chain alive too
    del arrays
    assert hoist.live_weights() == (count, nbytes)
    assert keep.tobytes() == reference["f32.4"][2]  # the memory is still the arena's
    del keep
    assert hoist.live_weights() == (count, nbytes)
    del view
    assert hoist.live_weights() == base  # the last view freed the arena


def test_handle_and_views_release_independently(every_dtype):
    base = hoist.live_weights()
    f = hoist.safe_open(every_dtype, framework="np")
    a = f.get_tensor("i32.3")
    f.close()  # the handle's reference goes; the array's stays
    assert hoist.live_weights()[0] == base[0] + 1
    del a
    assert hoist.live_weights() == base
    with hoist.safe_open(every_dtype, framework="np") as f:
        f.get_tensor("i32.3")
        assert hoist.live_weights()[0] == base[0] + 1
    assert hoist.live_weights() == base  # closed and no view left


def test_dlpack_export_through_numpy(every_dtype):
    """The DLPack path torch uses, consumed by numpy.from_dlpack: the deleter releases the
    capsule's reference when the consumer's array dies."""
    reference, _ = ref.read_file(every_dtype)
    base = hoist.live_weights()
    f = hoist.safe_open(every_dtype, framework="np").load()
    exports = {}
    for name in ("f32.4", "i16.3", "u8.7", "f64.9", "c64.5"):
        v = f._view(f._index[name])
        code = {"f": _dlpack.KDL_FLOAT, "i": _dlpack.KDL_INT, "u": _dlpack.KDL_UINT,
                "c": _dlpack.KDL_COMPLEX}[name[0]]
        bits = ref.BITS[name.split(".")[0].upper()]
        exports[name] = _dlpack.Export(f._weights.handle, v.data, v.device, code, bits,
                                       reference[name][1])
    f.close()
    arrays = {k: np.from_dlpack(e) for k, e in exports.items()}
    del exports
    assert hoist.live_weights()[0] == base[0] + 1
    for name, a in arrays.items():
        assert a.shape == reference[name][1]
        assert a.size == 0 or a.strides == c_strides(a.shape, a.itemsize)
        assert a.tobytes() == reference[name][2]
    del a  # the loop's name holds the last array
    last = arrays.pop("f32.4")
    del arrays
    assert hoist.live_weights()[0] == base[0] + 1
    assert last.tobytes() == reference["f32.4"][2]
    del last
    assert hoist.live_weights() == base


@pytest.mark.parametrize("versioned", [False, True])
def test_unconsumed_capsule_releases_its_reference(every_dtype, versioned):
    """A capsule nobody consumed still holds a reference; its destructor gives it back. The
    versioned capsule is read back field by field (DLPack 1.0 layout)."""
    reference, _ = ref.read_file(every_dtype)
    base = hoist.live_weights()
    f = hoist.safe_open(every_dtype, framework="np").load()
    name = "i16.5"
    shape = reference[name][1]
    v = f._view(f._index[name])
    export = _dlpack.Export(f._weights.handle, v.data, v.device, _dlpack.KDL_INT, 16, shape)
    f.close()
    capsule = export.__dlpack__(max_version=(1, 0) if versioned else None)
    del export
    assert hoist.live_weights()[0] == base[0] + 1  # the capsule's own reference
    getter = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
        ("PyCapsule_GetPointer", ctypes.pythonapi))
    if versioned:
        m = _dlpack.DLManagedTensorVersioned.from_address(getter(capsule, b"dltensor_versioned"))
        assert (m.version.major, m.version.minor) == (1, 0) and m.flags == 0
    else:
        m = _dlpack.DLManagedTensor.from_address(getter(capsule, b"dltensor"))
    t = m.dl_tensor
    assert (t.device.device_type, t.device.device_id) == (_dlpack.KDL_CPU, 0)
    assert (t.dtype.code, t.dtype.bits, t.dtype.lanes) == (_dlpack.KDL_INT, 16, 1)
    assert tuple(t.shape[i] for i in range(t.ndim)) == shape
    assert tuple(t.strides[i] for i in range(t.ndim)) == c_strides(shape, 1)
    assert ctypes.string_at(t.data + t.byte_offset, len(reference[name][2])) == reference[name][2]
    del t, m
    del capsule
    assert hoist.live_weights() == base


def test_dlpack_refuses_copy_and_other_devices(every_dtype):
    with hoist.safe_open(every_dtype, framework="np") as f:
        f.load()
        v = f._view(0)
        export = _dlpack.Export(f._weights.handle, v.data, v.device, _dlpack.KDL_UINT, 8, (1,))
    with pytest.raises(BufferError):
        export.__dlpack__(copy=True)
    with pytest.raises(BufferError):
        export.__dlpack__(dl_device=(_dlpack.KDL_CUDA, 0))
    assert export.__dlpack_device__() == (_dlpack.KDL_CPU, 0)


# ---- torch (where it is installed; the device machine runs these) --------------------------------

TORCH_DTYPES = {"BOOL": "bool", "U8": "uint8", "I8": "int8", "I16": "int16", "U16": "uint16",
                "I32": "int32", "U32": "uint32", "I64": "int64", "U64": "uint64",
                "F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64",
                "C64": "complex64", "F8_E5M2": "float8_e5m2", "F8_E4M3": "float8_e4m3fn",
                "F8_E4M3FNUZ": "float8_e4m3fnuz", "F8_E5M2FNUZ": "float8_e5m2fnuz",
                "F8_E8M0": "float8_e8m0fnu", "F4": "float4_e2m1fn_x2", "F6_E2M3": "uint8",
                "F6_E3M2": "uint8"}


@pytest.mark.skipif(torch is None, reason="needs torch")
def test_torch_host_every_dtype(every_dtype):
    reference, _ = ref.read_file(every_dtype)
    missing = [d for d in ref.BITS if not hasattr(torch, TORCH_DTYPES[d])]
    if missing:
        pytest.skip("this torch lacks %s" % missing)
    base = hoist.live_weights()
    tensors = hoist.load_file(every_dtype, device="cpu", framework="pt")
    for name, (dtype, shape, data) in reference.items():
        t = tensors[name]
        want = expected_shape(dtype, shape, len(data))
        assert t.dtype == getattr(torch, TORCH_DTYPES[dtype]), name
        assert tuple(t.shape) == want, name
        assert t.stride() == c_strides(want, 1) == torch.empty(want).stride(), name
        assert t.device.type == "cpu"
        assert t.is_contiguous(), name
        assert ctypes.string_at(t.data_ptr(), t.numel() * t.element_size()) == data, name
    keep = tensors["bf16.4"]
    del tensors, t  # the loop's name holds a tensor too
    assert hoist.live_weights()[0] == base[0] + 1
    del keep
    assert hoist.live_weights() == base
