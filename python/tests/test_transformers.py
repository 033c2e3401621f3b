"""hoist.transformers.from_pretrained: a transformers model over hoist's tensors gives the logits
and greedy tokens of AutoModelForCausalLM.from_pretrained on the same checkpoint, keeps tied
weights tied, computes its non-persistent buffers, holds hoist's arena exactly as long as it
lives, and names missing, unexpected and mismatched tensors.

With the real transformers (the device machine) these compare with its from_pretrained. Where it
does not import (Debian has no python3-transformers, CI no package index), the stand-in in
standin/transformers takes its place, so that the glue is still tested; its Llama is checked
against `hoist run`'s CPU reference first."""

import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

import pytest

torch = pytest.importorskip("torch")

try:
    import transformers  # noqa: F401
    STANDIN = False
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "standin"))
    import transformers  # noqa: F401
    STANDIN = True

import hoist
import hoist.transformers as ht
import st_reference as ref


def cli():
    exe = os.environ.get("HOIST_CLI")
    if not exe:
        pytest.skip("HOIST_CLI (the hoist command) is not set: run through ctest")
    return exe


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="hoist-py-tf-")
    yield d
    shutil.rmtree(d)


def gen(tmp, name, *args):
    path = os.path.join(tmp, name)
    subprocess.run([cli(), "gen", path, "--preset", "tiny", "--quiet", *args], check=True)
    return path


def reference(path, dtype):
    kw = {"dtype" if ht._version() >= (4, 56) else "torch_dtype": dtype}
    return transformers.AutoModelForCausalLM.from_pretrained(path, **kw).eval()


PROMPT = [[1, 2, 3, 4, 5]]


def greedy(model, n=8):
    ids = torch.tensor(PROMPT, device=model.device)
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=n, do_sample=False)
    return out[0, len(PROMPT[0]):].tolist()


def logits(model):
    with torch.no_grad():
        return model(torch.tensor(PROMPT, device=model.device)).logits.float().cpu()


@pytest.mark.skipif(not STANDIN, reason="checks the stand-in, which runs without transformers")
def test_standin_llama_is_hoist_run(tmp):
    """The stand-in's Llama computes what hoist's own CPU forward pass computes (f32)."""
    path = gen(tmp, "f32", "--dtype", "f32")
    out = subprocess.run([cli(), "run", path, "--device", "host", "--tokens",
                          ",".join(map(str, PROMPT[0])), "--n", "8"],
                         check=True, capture_output=True, text=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("generated"))
    assert greedy(reference(path, torch.float32)) == [int(t) for t in line.split(":")[1].split()]


@pytest.mark.parametrize("dtype", ["f32", "bf16"])
def test_same_model_as_from_pretrained(tmp, dtype):
    path = gen(tmp, "m", "--dtype", dtype)
    base = hoist.live_weights()
    model = ht.from_pretrained(path, device="cpu")
    assert hoist.live_weights()[0] == base[0] + 1  # one arena holds every parameter
    want = torch.float32 if dtype == "f32" else torch.bfloat16
    theirs = reference(path, want)
    assert type(model) is type(theirs)
    assert not model.training
    params = dict(model.named_parameters())
    assert set(params) == set(dict(theirs.named_parameters()))
    for name, p in params.items():
        assert p.dtype == want and not p.requires_grad, name
        assert torch.equal(p, dict(theirs.named_parameters())[name]), name
    rotary = [m for m in model.modules() if type(m).__name__.endswith("RotaryEmbedding")]
    assert rotary and all(torch.equal(m.inv_freq, r.inv_freq) for m, r in
                          zip(rotary, [m for m in theirs.modules()
                                       if type(m).__name__.endswith("RotaryEmbedding")]))
    assert torch.equal(logits(model), logits(theirs))
    assert greedy(model) == greedy(theirs)
    assert model.hoist_stats["bytes"] > 0 and model.hoist_stats["path"]
    t = model.hoist_timeline
    assert 0 <= t["opened"] <= t["config"] <= t["built"] <= t["ready"]
    assert t["opened"] <= t["loaded"] <= t["ready"]
    del model, params, p
    gc.collect()
    assert hoist.live_weights() == base  # the model held the arena, and nothing else did


def test_tied_embeddings(tmp):
    path = gen(tmp, "tied", "--tie-embeddings", "--dtype", "f32")
    with hoist.safe_open(path) as f:
        assert "lm_head.weight" not in f.keys()
    model = ht.from_pretrained(path, device="cpu")
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert greedy(model) == greedy(reference(path, torch.float32))


def test_dtype_converts(tmp):
    path = gen(tmp, "m")  # bf16
    model = ht.from_pretrained(path, device="cpu", dtype=torch.float32)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert torch.equal(logits(model), logits(reference(path, torch.float32)))
    with pytest.raises(hoist.HoistError) as e:
        ht.from_pretrained(path, device="cpu", dtype="int8")
    assert e.value.name == "HOIST_E_INVALID_ARG" and "int8" in e.value.message


def rewrite(path, edit):
    """The checkpoint of path rewritten with edit(tensors) -> tensors."""
    st = os.path.join(path, "model.safetensors")
    tensors, metadata = ref.read_file(st)
    rows = [(n, d, s, b) for n, (d, s, b) in tensors.items()]
    ref.write(st, edit(rows), metadata=metadata)


def test_config_resolved_while_loading(tmp, monkeypatch):
    """AutoConfig (with transformers 5 a quarter of a second of imports) runs once the load has
    started, not before it."""
    path = gen(tmp, "m")
    started, seen = threading.Event(), []
    tensors = hoist._core.safe_open.tensors
    auto = transformers.AutoConfig.from_pretrained

    def load(self):
        started.set()
        return tensors(self)

    def config(*args, **kwargs):
        seen.append(started.wait(30))
        return auto(*args, **kwargs)

    monkeypatch.setattr(hoist._core.safe_open, "tensors", load)
    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", staticmethod(config))
    model = ht.from_pretrained(path, device="cpu")
    assert seen == [True]
    assert greedy(model, 2)


def test_unknown_model_type_fails_before_the_load(tmp, monkeypatch):
    path = gen(tmp, "m")
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    config["model_type"] = "no-such-family"
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f)
    loads = []
    monkeypatch.setattr(hoist._core.safe_open, "tensors", lambda self: loads.append(self))
    base = hoist.live_weights()
    with pytest.raises(ValueError) as e:
        ht.from_pretrained(path, device="cpu")
    assert "no-such-family" in str(e.value)
    assert loads == []
    assert hoist.live_weights() == base


def test_missing_tensor_is_named(tmp):
    path = gen(tmp, "m")
    rewrite(path, lambda rows: [r for r in rows if r[0] != "model.layers.1.mlp.up_proj.weight"])
    base = hoist.live_weights()
    with pytest.raises(hoist.HoistError) as e:
        ht.from_pretrained(path, device="cpu")
    assert e.value.name == "HOIST_E_NOT_FOUND"
    assert "model.layers.1.mlp.up_proj.weight" in e.value.message
    assert e.value.missing == ["model.layers.1.mlp.up_proj.weight"]
    gc.collect()
    assert hoist.live_weights() == base  # nothing kept by the failed build


def test_unexpected_tensor_is_named(tmp):
    path = gen(tmp, "m")
    rewrite(path, lambda rows: rows + [("model.layers.0.extra.weight", "BF16", (2,), b"\0" * 4)])
    with pytest.raises(hoist.HoistError) as e:
        ht.from_pretrained(path, device="cpu")
    assert e.value.name == "HOIST_E_BAD_TENSOR"
    assert "model.layers.0.extra.weight" in e.value.message
    assert e.value.unexpected == ["model.layers.0.extra.weight"]


def test_shape_mismatch_is_named(tmp):
    path = gen(tmp, "m")
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    config["intermediate_size"] += 4
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f)
    with pytest.raises(hoist.HoistError) as e:
        ht.from_pretrained(path, device="cpu")
    assert e.value.name == "HOIST_E_SIZE_MISMATCH"
    assert "mlp.up_proj.weight" in e.value.message and "176" in e.value.message


def test_base_model_checkpoint(tmp):
    """A checkpoint saved from the base model (names without "model.") with a tied head."""
    path = gen(tmp, "m", "--tie-embeddings")
    rewrite(path, lambda rows: [(n[len("model."):], d, s, b) for n, d, s, b in rows])
    model = ht.from_pretrained(path, device="cpu")
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert torch.equal(logits(model), logits(ht.from_pretrained(gen(tmp, "again",
                                                                    "--tie-embeddings"),
                                                                device="cpu")))


def test_planned_on_host(tmp):
    """device_map="auto": hoist's planner places the layers (here: the host, the one device)."""
    path = gen(tmp, "m", "--dtype", "f32")
    model = ht.from_pretrained(path, device="cpu", device_map="auto", devices=["cpu"],
                               max_seq_len=64)
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    assert greedy(model) == greedy(reference(path, torch.float32))
    with pytest.raises(hoist.HoistError) as e:
        ht.from_pretrained(path, device="cpu", device_map={"": 0})
    assert e.value.name == "HOIST_E_INVALID_ARG" and "device_map" in e.value.message


def test_load_options_pass_through(tmp):
    path = gen(tmp, "m")
    model = ht.from_pretrained(path, device="cpu", path_kind="stream", ram_budget="64M",
                               verify="readback")
    assert model.hoist_stats["path"] == "stream"
    with pytest.raises(hoist.HoistError) as e:
        ht.from_pretrained(path, device="cpu", verify="manifest")  # no `hoist sum` ran
    assert e.value.name == "HOIST_E_NOT_FOUND"


def test_max_memory_on_host(tmp):
    path = gen(tmp, "m", "--dtype", "f32")
    model = ht.from_pretrained(path, device="cpu", device_map="auto", max_memory={"cpu": "1G"},
                               max_seq_len=64)
    assert greedy(model) == greedy(reference(path, torch.float32))
    with pytest.raises(hoist.HoistError) as e:  # far too little: the planner says so
        ht.from_pretrained(path, device="cpu", device_map="auto", max_memory={"cpu": 4096},
                           max_seq_len=64)
    assert e.value.name == "HOIST_E_NO_FIT"


# ---- on a GPU (the device machine) --------------------------------------------------------------

cuda = pytest.mark.skipif(not torch.cuda.is_available() or hoist.device_count() == 0,
                          reason="needs a CUDA device")


@cuda
def test_cuda_matches_from_pretrained_and_torch_counts_it(tmp):
    path = gen(tmp, "m")
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated(0)
    model = ht.from_pretrained(path, device="cuda:0")
    arena = model.hoist_stats["arena_bytes"]
    assert torch.cuda.memory_allocated(0) - before >= arena  # the arena is torch's memory
    assert {p.device for p in model.parameters()} == {torch.device("cuda", 0)}
    assert all(b.device == torch.device("cuda", 0) for b in model.buffers())
    del model  # before anything runs on it: a forward pass leaves cuBLAS workspace behind
    gc.collect()
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated(0) == before  # and it went back to torch
    model = ht.from_pretrained(path, device="cuda:0")
    assert greedy(model) == greedy(reference(path, torch.bfloat16).to("cuda:0"))


@cuda
def test_split_over_cuda_and_host(tmp):
    """max_memory caps cuda:0 so that the planner puts the later layers on the host: the model
    runs over both (hooks move the activations) and gives the single-device tokens."""
    path = gen(tmp, "m", "--dtype", "f32")
    want = greedy(ht.from_pretrained(path, device="cuda:0"))

    def placed(cap):
        """The device types the model went to under this cap of cuda:0 (none: it did not fit)."""
        try:
            model = ht.from_pretrained(path, device="cuda:0", device_map="auto",
                                       devices=["cuda:0", "cpu"], max_seq_len=16,
                                       max_memory={"cuda:0": cap, "cpu": "1G"})
        except hoist.HoistError as e:
            assert e.name == "HOIST_E_NO_FIT", e
            return set(), None
        return {p.device.type for p in model.parameters()}, model

    # cuda:0's workspace dwarfs this model, so the caps that split it lie in a window about the
    # model's size wide: bisect between a cap that puts nothing on cuda:0 and one that puts all
    lo, hi = 1 << 20, 1 << 30
    assert placed(lo)[0] <= {"cpu"} and placed(hi)[0] == {"cuda"}
    model = None
    while hi - lo > 1024:
        mid = (lo + hi) // 2
        types, model = placed(mid)
        if types == {"cuda", "cpu"}:
            break
        if types == {"cuda"}:
            hi = mid
        else:
            lo = mid
        model = None
    if model is None:
        pytest.fail("no cap of cuda:0 in %d..%d split the model over cuda:0 and the host" % (lo, hi))
    assert set(model.hf_device_map.values()) == {0, "cpu"}
    assert model.hf_device_map["model.embed_tokens"] == 0
    assert greedy(model) == want


def test_build_puts_parameters_on_meta(tmp):
    """The skeleton has no weight memory: parameters on the meta device, buffers (computed by
    the constructor) real; and the patch is undone afterwards."""
    config = transformers.AutoConfig.from_pretrained(gen(tmp, "m"))
    register = torch.nn.Module.register_parameter
    model = ht._build(config, torch.bfloat16, False, None)
    assert torch.nn.Module.register_parameter is register
    assert all(p.device.type == "meta" for p in model.parameters())
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    assert [b.device.type for b in model.buffers()] and \
        all(b.device.type == "cpu" for b in model.buffers())
    assert torch.nn.Linear(2, 2).weight.device.type == "cpu"  # outside the build: as usual
