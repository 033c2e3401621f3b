#!/usr/bin/env python3
"""transformers against hoist on one checkpoint: greedy tokens and first-step logits.

    hf_compare.py MODEL_DIR --dtype f32|bf16 --tokens 1,2,3 --steps 32 --devices host,cuda:0

transformers (AutoModelForCausalLM, eager attention, no TF32) decodes greedily with its KV cache:
the prompt in one forward, then one token per forward, as generate() does; so dynamic NTK's
recompute sees the same sequence lengths as hoist's. hoist runs through libhoist (the Python
package of python/, HOIST_LIBRARY naming the library): hoist_session_generate for the tokens, a
fresh prefill for the logits. Prints one JSON object:
    {"hf": [...], "hoist": {"host": {"tokens": [...], "same": n, "logit_diff": d}, ...}}
where `same` counts the leading tokens equal to transformers' and `logit_diff` is the first
step's max |hoist - transformers| over the range (max - min) of transformers' logits.
"""

import argparse
import ctypes
import json
import sys


def hf_greedy(model_dir, dtype, prompt, steps):
    import torch
    from transformers import AutoModelForCausalLM

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tdtype = torch.float32 if dtype == "f32" else torch.bfloat16
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=tdtype,
                                                 attn_implementation="eager").to(device).eval()
    tokens = []
    with torch.no_grad():
        out = model(torch.tensor([prompt], device=device), use_cache=True)
        first = out.logits[0, -1].float().cpu().numpy()
        for _ in range(steps):
            t = int(out.logits[0, -1].float().argmax())
            tokens.append(t)
            out = model(torch.tensor([[t]], device=device), past_key_values=out.past_key_values,
                        use_cache=True)
    return tokens, first


class SessionOptions(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("max_tokens", ctypes.c_uint32),
                ("max_batch", ctypes.c_uint32), ("cuda_graphs", ctypes.c_int)]


def hoist_run(model_dir, device, prompt, steps):
    """(tokens, first-step logits) from libhoist on device ("host" or "cuda:N")."""
    import numpy as np
    from hoist import _lib

    lib = _lib.lib
    P = ctypes.POINTER
    sigs = {
        "hoist_model_open": [ctypes.c_char_p, ctypes.c_void_p, P(ctypes.c_void_p)],
        "hoist_model_geometry": [ctypes.c_void_p, ctypes.c_void_p],
        "hoist_session_check_model": [ctypes.c_void_p, ctypes.c_void_p, P(SessionOptions)],
        "hoist_session_create": [ctypes.c_void_p, ctypes.c_void_p, P(SessionOptions),
                                 P(ctypes.c_void_p)],
        "hoist_session_generate": [ctypes.c_void_p, P(ctypes.c_int32), ctypes.c_size_t,
                                   ctypes.c_size_t, P(ctypes.c_int32)],
        "hoist_session_reset": [ctypes.c_void_p],
        "hoist_session_prefill": [ctypes.c_void_p, P(ctypes.c_int32), ctypes.c_size_t],
        "hoist_session_logits": [ctypes.c_void_p, P(ctypes.c_float), ctypes.c_size_t],
        "hoist_session_free": [ctypes.c_void_p],
        "hoist_weights_free": [ctypes.c_void_p],
        "hoist_model_free": [ctypes.c_void_p],
    }
    for name, args in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes = args
        fn.restype = None if name.endswith("_free") else ctypes.c_int
    model, weights, session = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
    geometry = ctypes.create_string_buffer(4096)  # hoist_geometry, opaque here but for its size
    ctypes.c_size_t.from_buffer(geometry).value = len(geometry)
    opts = SessionOptions(size=ctypes.sizeof(SessionOptions), max_tokens=len(prompt) + steps,
                          max_batch=0, cuda_graphs=1)
    load = _lib.LoadOptions.default()
    load.device = _lib.HOIST_DEVICE_HOST if device == "host" else int(device.split(":")[1])
    ids = (ctypes.c_int32 * len(prompt))(*prompt)
    out = (ctypes.c_int32 * steps)()
    try:
        _lib.check(lib.hoist_model_open(model_dir.encode(), None, ctypes.byref(model)))
        _lib.check(lib.hoist_model_geometry(model, geometry))
        _lib.check(lib.hoist_session_check_model(model, geometry, ctypes.byref(opts)))
        _lib.check(lib.hoist_load(model, ctypes.byref(load), ctypes.byref(weights)))
        _lib.check(lib.hoist_session_create(weights, geometry, ctypes.byref(opts),
                                            ctypes.byref(session)))
        _lib.check(lib.hoist_session_generate(session, ids, len(prompt), steps, out))
        # a fresh session: dynamic NTK keeps the longest sequence it has seen, as transformers'
        # rotary module does, and the first prompt saw none
        lib.hoist_session_free(session)
        session = ctypes.c_void_p()
        _lib.check(lib.hoist_session_create(weights, geometry, ctypes.byref(opts),
                                            ctypes.byref(session)))
        _lib.check(lib.hoist_session_prefill(session, ids, len(prompt)))
        vocab = 1 << 20
        logits = (ctypes.c_float * vocab)()
        # the vocabulary is at most 2^20 here; the call checks n >= vocab
        _lib.check(lib.hoist_session_logits(session, logits, vocab))
        return list(out), np.ctypeslib.as_array(logits).copy()
    finally:
        lib.hoist_session_free(session)
        lib.hoist_weights_free(weights)
        lib.hoist_model_free(model)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--devices", default="host,cuda:0")
    a = ap.parse_args()
    prompt = [int(t) for t in a.tokens.split(",")]
    hf, hf_logits = hf_greedy(a.model, a.dtype, prompt, a.steps)
    result = {"hf": hf, "hoist": {}}
    span = float(hf_logits.max() - hf_logits.min()) or 1.0
    for dev in a.devices.split(","):
        try:
            tokens, logits = hoist_run(a.model, dev, prompt, a.steps)
        except Exception as e:  # one device's failure is a row of the table, not the end
            result["hoist"][dev] = {"error": str(e)}
            continue
        same = 0
        while same < len(hf) and tokens[same] == hf[same]:
            same += 1
        diff = float(abs(logits[: len(hf_logits)] - hf_logits).max()) / span
        result["hoist"][dev] = {"tokens": tokens, "same": same, "logit_diff": diff}
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
