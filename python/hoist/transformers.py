"""A Hugging Face transformers model whose weights hoist loaded.

    import hoist.transformers
    model = hoist.transformers.from_pretrained("models/llama-8b", device="cuda:0")
    out = model.generate(input_ids.to("cuda:0"), max_new_tokens=32, do_sample=False)

The model is built from the checkpoint's config.json with its parameters on the meta device (no
memory, no initialisation), then every parameter and persistent buffer becomes one of hoist's
tensors: zero-copy views of hoist's arena on the target device, loaded at storage speed inside a
host-RAM budget. Tied weights stay tied; buffers the checkpoint does not hold (the rotary
embedding's inv_freq) are the model's own, computed by its constructor, moved to the device of
their module. The result is an ordinary PreTrainedModel in eval mode.

Works for every family transformers knows whose parameter names match the checkpoint's (the
base model prefix may be present or absent, as transformers allows). transformers and torch are
imported when this module is.
"""

import contextlib
import json
import logging
import os
import re
import threading
import time

import torch
import transformers as _tf

from . import _core, _lib

__all__ = ["from_pretrained"]

_log = logging.getLogger("hoist")


def _error(status, message, **attrs):
    err = _lib.error(_lib.status_code(status), message)
    for k, v in attrs.items():
        setattr(err, k, v)
    return err


def _names(names, limit=8):
    names = sorted(names)
    text = ", ".join(names[:limit])
    return text + (" and %d more" % (len(names) - limit) if len(names) > limit else "")


# ---- building without weights ------------------------------------------------------------------

@contextlib.contextmanager
def _parameters_on_meta():
    """Every parameter registered inside goes to the meta device as it is registered, before the
    module's constructor initialises it: building a model then takes no memory for its weights
    and no time initialising them (torch.empty on the host is not touched before it is dropped).
    Buffers are left alone, so those a constructor computes (rotary inv_freq) are computed as the
    model computes them. The same device split as accelerate's init_empty_weights, without
    needing accelerate, and on every torch from 1.13. Like accelerate's, it patches
    torch.nn.Module for its duration: modules another thread builds meanwhile are affected."""
    original = torch.nn.Module.register_parameter

    def register(module, name, param):
        original(module, name, param)
        if param is not None and param.device.type != "meta":
            p = module._parameters[name]
            meta = type(p)(p.to("meta"), requires_grad=p.requires_grad)
            meta.__dict__.update(p.__dict__)
            # transformers 5's post_init skips a tensor so marked (its no_init_weights switch
            # does not reach the initialisation any more); on meta it would compute nothing
            meta._is_hf_initialized = True
            module._parameters[name] = meta

    torch.nn.Module.register_parameter = register
    try:
        yield
    finally:
        torch.nn.Module.register_parameter = original


def _version():
    nums = []
    for part in _tf.__version__.split(".")[:2]:
        digits = re.match(r"\d+", part)
        nums.append(int(digits.group()) if digits else 0)
    return tuple(nums)


def _build(config, build_dtype, trust_remote_code, attn_implementation):
    kwargs = {}
    if trust_remote_code:
        kwargs["trust_remote_code"] = True
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    # transformers 4.56 renamed torch_dtype to dtype
    kwargs["dtype" if _version() >= (4, 56) else "torch_dtype"] = build_dtype
    with _parameters_on_meta(), _no_init_weights():
        return _tf.AutoModelForCausalLM.from_config(config, **kwargs)


def _no_init_weights():
    """transformers' own switch that skips the initialisation its post_init runs over every
    parameter: on the meta device it computes nothing, yet goes through torch's reference
    kernels once per tensor (0.17 s of an 8B model's 0.22 s build). Buffers are computed by the
    constructors, not by it. Where a transformers lacks the switch, the build just takes longer."""
    try:
        from transformers import modeling_utils
    except ImportError:  # (the stand-in the CPU tests use has none)
        return contextlib.nullcontext()
    switch = getattr(modeling_utils, "no_init_weights", None)
    return switch() if switch is not None else contextlib.nullcontext()


# ---- dtypes -------------------------------------------------------------------------------------

_FLOATS = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32,
           "F64": torch.float64}


def _parse_dtype(dtype):
    if dtype is None or dtype == "auto":
        return None
    if isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).replace("torch.", "")
    name = {"bf16": "bfloat16", "f16": "float16", "fp16": "float16", "half": "float16",
            "f32": "float32", "fp32": "float32", "float": "float32"}.get(name, name)
    value = getattr(torch, name, None)
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise _error("HOIST_E_INVALID_ARG", "dtype %r: expected a floating torch dtype "
                     "(torch.bfloat16, \"float16\", ...) or None" % (dtype,))
    return value


def _checkpoint_dtype(handle):
    """The floating dtype holding most of the checkpoint's bytes (the model is built in it, so
    that its parameters are the checkpoint's tensors as they are)."""
    by_dtype = {}
    for _, dtype, _, nbytes in handle._infos:
        if dtype in _FLOATS:
            by_dtype[dtype] = by_dtype.get(dtype, 0) + nbytes
    if not by_dtype:
        return torch.float32
    return _FLOATS[max(by_dtype, key=by_dtype.get)]


# ---- devices ------------------------------------------------------------------------------------

def _torch_device(device):
    if isinstance(device, torch.device):
        return device
    if isinstance(device, int):
        return torch.device("cuda", device)
    text = str(device)
    return torch.device("cpu" if text in ("host", "cpu") else text)


def _hoist_device(device):
    d = _torch_device(device)
    if d.type == "cpu":
        return "cpu"
    if d.type != "cuda":
        raise _error("HOIST_E_INVALID_ARG", "device %r: hoist loads into \"cpu\" or \"cuda:N\""
                     % (device,))
    return "cuda:%d" % (d.index if d.index is not None else torch.cuda.current_device())


def _device_id(device):
    """hoist's id of a device: -1 (HOIST_DEVICE_HOST) for the host, else the CUDA ordinal."""
    d = _hoist_device(device)
    return -1 if d == "cpu" else _torch_device(d).index


def _to_device(obj, device):
    """obj with every tensor in it (through tuples, lists and dicts) on device."""
    if isinstance(obj, torch.Tensor):
        return obj if obj.device == device else obj.to(device)
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        return type(obj)(_to_device(o, device) for o in obj)
    if isinstance(obj, dict) and type(obj) is dict:
        return {k: _to_device(v, device) for k, v in obj.items()}
    return obj


def _module_devices(module):
    return {t.device for t in module.parameters()} | {t.device for t in module.buffers()}


def _dispatch(model):
    """Hooks for a model whose layers sit on several devices, as accelerate's dispatch_model
    adds them: the inputs of every largest submodule whose weights are on one device move to
    that device, and the model's outputs come back to the device of its inputs (generate() then
    appends tokens where input_ids are). Returns {module name: device} (hf_device_map)."""
    if tuple(int(x) for x in re.findall(r"\d+", torch.__version__)[:2]) < (2, 0):
        raise _error("HOIST_E_UNSUPPORTED", "a model over several devices needs torch 2.0 or "
                     "later (forward pre-hooks with keyword arguments); this is torch %s"
                     % torch.__version__)
    device_map = {}

    def attach(module, name):
        devices = _module_devices(module)
        # a ModuleList or ModuleDict is iterated, never called: its hooks would never run
        called = not isinstance(module, (torch.nn.ModuleList, torch.nn.ModuleDict))
        if len(devices) == 1 and called:
            device = next(iter(devices))

            def pre(mod, args, kwargs, device=device):
                return _to_device(args, device), _to_device(kwargs, device)

            module.register_forward_pre_hook(pre, with_kwargs=True)
            device_map[name] = device.index if device.type == "cuda" else device.type
            return
        for child_name, child in module.named_children():
            attach(child, name + "." + child_name if name else child_name)

    for child_name, child in model.named_children():
        attach(child, child_name)

    state = {}

    def remember(mod, args, kwargs):
        first = next((t for t in list(args) + list(kwargs.values())
                      if isinstance(t, torch.Tensor)), None)
        state["device"] = first.device if first is not None else None

    def back(mod, args, kwargs, output):
        device = state.get("device")
        if device is None:
            return output
        if isinstance(output, torch.Tensor):
            return output.to(device)
        if hasattr(output, "items"):  # a ModelOutput (an OrderedDict): logits, hidden states
            for key, value in list(output.items()):
                if isinstance(value, torch.Tensor):
                    output[key] = value.to(device)
        return output

    model.register_forward_pre_hook(remember, with_kwargs=True)
    model.register_forward_hook(back, with_kwargs=True)
    return device_map


# ---- the parameters ----------------------------------------------------------------------------

def _slots(model):
    """(parameters, buffers): {id: [(qualified name, module, attribute), ...]} per tensor object,
    every name a shared (tied) tensor has, in module order; persistent buffers only."""
    params, buffers, order = {}, {}, []
    for prefix, module in model.named_modules(remove_duplicate=False):
        dot = prefix + "." if prefix else ""
        for attr, p in module._parameters.items():
            if p is not None:
                if id(p) not in params:
                    order.append(("p", id(p)))
                params.setdefault(id(p), []).append((dot + attr, module, attr))
        for attr, b in module._buffers.items():
            if b is not None and attr not in module._non_persistent_buffers_set:
                if id(b) not in buffers:
                    order.append(("b", id(b)))
                buffers.setdefault(id(b), []).append((dot + attr, module, attr))
    return params, buffers, order


def _key_for(name, keys, prefix):
    """The checkpoint key of a model name: itself, or without/with the base model prefix
    ("model."), as transformers matches a base model's checkpoint with a head model."""
    if name in keys:
        return name
    if prefix:
        if name.startswith(prefix + ".") and name[len(prefix) + 1:] in keys:
            return name[len(prefix) + 1:]
        if prefix + "." + name in keys:
            return prefix + "." + name
    return None


def _ignored(name, patterns):
    return any(re.search(p, name) for p in patterns or ())


def _text_config(config):
    get = getattr(config, "get_text_config", None)
    try:
        return get(decoder=True) if get else config
    except TypeError:
        return get()


def _assign(model, tensors):
    """Makes each parameter and persistent buffer of model the checkpoint's tensor of its name
    (converted when the model keeps it in another floating dtype). Returns (checkpoint keys
    used, parameters missing, shape or dtype mismatches)."""
    params, buffers, order = _slots(model)
    prefix = getattr(model, "base_model_prefix", "") or ""
    keys = set(tensors)
    used, missing, mismatched = set(), [], []
    for kind, ident in order:
        slots = (params if kind == "p" else buffers)[ident]
        current = getattr(slots[0][1], "_parameters" if kind == "p" else "_buffers")[slots[0][2]]
        found = [(n, _key_for(n, keys, prefix)) for n, _, _ in slots]
        found = [(n, k) for n, k in found if k is not None]
        if not found:
            if kind == "p":
                missing.append(slots[0][0])
            continue  # a buffer the checkpoint lacks keeps the constructor's value
        used.update(k for _, k in found)
        tensor = tensors[found[0][1]]
        if tuple(tensor.shape) != tuple(current.shape):
            mismatched.append("%s: checkpoint %s, model %s" % (found[0][1], list(tensor.shape),
                                                              list(current.shape)))
            continue
        want = current.dtype
        if tensor.dtype != want:
            if not (tensor.dtype.is_floating_point and want.is_floating_point):
                mismatched.append("%s: checkpoint %s, model %s" % (found[0][1], tensor.dtype,
                                                                  want))
                continue
            tensor = tensor.to(want)  # a copy: the model keeps this module in another dtype
        if kind == "p":
            value = torch.nn.Parameter(tensor, requires_grad=False)
            for _, module, attr in slots:
                module._parameters[attr] = value
        else:
            for _, module, attr in slots:
                module._buffers[attr] = tensor
    return used, missing, mismatched


def _tie(model, config, missing):
    """Ties the output embeddings to the input ones when the config says so (the checkpoint then
    has no lm_head.weight), and checks that they are one tensor afterwards. Returns the names
    still missing."""
    text = _text_config(config)
    tied = bool(getattr(text, "tie_word_embeddings", getattr(config, "tie_word_embeddings",
                                                             False)))
    if not tied:
        return missing
    model.tie_weights()
    out, inp = model.get_output_embeddings(), model.get_input_embeddings()
    if out is not None and inp is not None:
        if out.weight is not inp.weight:
            raise _error("HOIST_E_INTERNAL", "tie_word_embeddings is set, yet after tie_weights() "
                         "the output embeddings of %s are not its input embeddings"
                         % type(model).__name__)
    return [n for n in missing if _lookup(model, n).device.type == "meta"]


def _lookup(model, name):
    module_name, _, attr = name.rpartition(".")
    module = model.get_submodule(module_name) if module_name else model
    return getattr(module, attr)


def _place_buffers(model, default_device):
    """Moves every buffer not from the checkpoint (what the constructor computed on the host:
    rotary inv_freq; persistent buffers the checkpoint lacks) to the device of its module's
    weights, the nearest ancestor's for a module without any (the model-level rotary embedding:
    the embeddings' device), as transformers' from_pretrained moves them. A buffer a constructor
    left on the meta device (one that builds under torch.device("meta") itself) is computed
    again by running that module's constructor on the device, rotary embeddings' (config,
    device=) signature."""
    def visit(module, inherited):
        own = next((p.device for p in module.parameters() if p.device.type != "meta"), None)
        device = own or inherited
        if any(b is not None and b.device.type == "meta" for b in module._buffers.values()):
            _rebuild_buffers(module, device)
        for attr, b in module._buffers.items():
            if b is not None and b.device != device and b.device.type != "meta":
                module._buffers[attr] = b.to(device)
        for child in module.children():
            visit(child, device)

    visit(model, default_device)


def _rebuild_buffers(module, device):
    config = getattr(module, "config", None)
    if config is None:
        return  # reported as a tensor without a value
    try:
        fresh = type(module)(config=config, device=device)
    except (TypeError, ValueError, RuntimeError) as e:
        _log.warning("%s: cannot compute its buffers again (%s)", type(module).__name__, e)
        return
    for attr, b in fresh._buffers.items():
        if attr in module._buffers and module._buffers[attr] is not None \
                and module._buffers[attr].device.type == "meta":
            module._buffers[attr] = b
    for name, value in vars(fresh).items():  # original_inv_freq and the like, kept as attributes
        if isinstance(value, torch.Tensor) and getattr(module, name, None) is not None \
                and getattr(module, name).device.type == "meta":
            setattr(module, name, value)


# ---- the entry point ----------------------------------------------------------------------------

def _known_model_types():
    """The model_type names transformers' AutoConfig maps, without importing any of their
    modules; None where this transformers does not say (the check is then left to AutoConfig)."""
    try:
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    except ImportError:
        return None
    return CONFIG_MAPPING_NAMES


def _config_source(directory, trust_remote_code, config=None):
    """A function that returns the checkpoint's transformers config, to call while the load runs:
    AutoConfig imports the family's configuration module there, which with transformers 5 pulls
    in torchvision (a quarter of a second on the H200 machine, before the first byte would
    otherwise be loaded). What can fail cheaply is checked now, so that a bad config.json fails
    before the load rather than after it: the file read and parsed, its model_type one that
    AutoConfig knows. Anything else (a missing file, remote code) runs AutoConfig now, raising
    transformers' own error; a known model_type whose values the config class rejects fails
    after the load. A config given is returned as it is."""
    if config is not None:
        return lambda: config

    def now():
        return _tf.AutoConfig.from_pretrained(directory, trust_remote_code=trust_remote_code)

    try:
        with open(os.path.join(directory, "config.json")) as f:
            model_type = json.load(f).get("model_type")
    except (OSError, ValueError, AttributeError):
        model_type = None
    known = _known_model_types()
    if trust_remote_code or not isinstance(model_type, str) or \
            (known is not None and model_type not in known):
        config = now()
        return lambda: config
    return now


def _build_while_loading(handle, config_source, build_dtype, trust_remote_code,
                         attn_implementation, marks):
    """The load runs on a thread of its own while this one resolves the config and builds the
    skeleton: hoist's load holds the GIL only to make the tensors at its end (ctypes releases it
    around the C call), and neither needs the weights, so they overlap. The load's exception, if
    any, is raised here after the build is done with; a build that fails drops the loaded tensors
    with it. Returns (model, tensors, config); marks gets the perf_counter() times at which the
    load ended ("loaded"), the config was ready ("config") and the skeleton built ("built")."""
    result = {}

    def load():
        try:
            result["tensors"] = handle.tensors()
        except BaseException as e:  # re-raised on the caller's thread below
            result["error"] = e
        marks["loaded"] = time.perf_counter()

    worker = threading.Thread(target=load, name="hoist-load", daemon=True)
    worker.start()
    try:
        config = config_source()
        marks["config"] = time.perf_counter()
        model = _build(config, build_dtype, trust_remote_code, attn_implementation)
        marks["built"] = time.perf_counter()
    finally:
        worker.join()
    if "error" in result:
        raise result.pop("error")
    return model, result.pop("tensors"), config


def from_pretrained(path, device="cuda:0", dtype=None, device_map=None, *, config=None,
                    trust_remote_code=False, attn_implementation=None, devices=None,
                    max_memory=None, max_seq_len=None, **load_kwargs):
    """Builds a transformers causal LM from the checkpoint at path with hoist's loader.

    path: a model directory (config.json and model.safetensors, sharded or not, or a packed
        model.hoist), or a checkpoint file / index inside one.
    device: where the weights go ("cuda:N", "cpu", an int or a torch.device), one arena.
    dtype: None (the checkpoint's dtype: parameters are hoist's tensors themselves, zero-copy)
        or a floating dtype to build the model in; tensors of another dtype are then converted
        (a copy each) as transformers converts them.
    device_map: None (everything on device) or "auto": hoist's planner places the layers over
        `devices` (None: every CUDA device) in order, leaving room for each layer's KV cache of
        max_seq_len positions (None: the model's max_position_embeddings); each tensor is loaded
        straight onto its layer's device, one arena per device, and hooks move activations
        between devices. model.hf_device_map says where each module went. Any other map is
        refused (hoist places whole layers; HOIST_E_INVALID_ARG). max_memory ({device: bytes or
        "8G"}, as transformers takes it) caps what the planner puts on a device; with devices
        None its keys, in order, are the devices.
    config: a transformers config to use instead of path's config.json.
    trust_remote_code, attn_implementation: passed to transformers.
    load_kwargs: hoist.safe_open's options (path_kind, ram_budget, threads, chunk_bytes,
        verify).

    Returns the model in eval mode, requires_grad off, with model.hoist_stats (the load's
    statistics) and model.hoist_timeline: seconds from the call's start at which the checkpoint
    was opened ("opened"; the load starts then, on a thread of its own), transformers' config was
    ready ("config"), the skeleton was built ("built"), the load ended ("loaded") and the model
    was ready ("ready"): whichever of "built" and "loaded" is later is the critical path.

    Raises HoistError: for a checkpoint that lacks parameters of the model
    (HOIST_E_NOT_FOUND, .missing) or holds tensors the model does not have (HOIST_E_BAD_TENSOR,
    .unexpected), or whose shapes or dtypes differ (HOIST_E_SIZE_MISMATCH), each naming them; and
    for every failure of the load itself.
    """
    start = time.perf_counter()
    marks = {}
    directory = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    if device_map not in (None, "auto"):
        raise _error("HOIST_E_INVALID_ARG", "device_map=%r: hoist places whole layers with its "
                     "planner; pass device_map=\"auto\" (with devices=[...] to choose them) or "
                     "None" % (device_map,))
    # with a plan the load follows it; the device still names torch's device to keep current
    target = _hoist_device(device)
    config_source = _config_source(directory, trust_remote_code, config)
    handle = _core.safe_open(path, framework="pt", device=target, **load_kwargs)
    try:
        if device_map == "auto":
            if devices is None and max_memory:
                devices = list(max_memory)
            ids = None if devices is None else [_device_id(d) for d in devices]
            caps = None
            if max_memory:
                by_id = {_device_id(d): cap for d, cap in max_memory.items()}
                caps = [by_id.get(i, 0) for i in ids]
            handle.plan(ids, max_seq_len=max_seq_len, free_bytes=caps)
        build_dtype = _parse_dtype(dtype) or _checkpoint_dtype(handle)
        marks["opened"] = time.perf_counter()
        model, tensors, config = _build_while_loading(handle, config_source, build_dtype,
                                                      trust_remote_code, attn_implementation,
                                                      marks)
        stats = handle.stats()
    finally:
        handle.close()

    used, missing, mismatched = _assign(model, tensors)
    missing = _tie(model, config, missing)
    missing = [n for n in missing
               if not _ignored(n, getattr(model, "_keys_to_ignore_on_load_missing", None))]
    unexpected = [k for k in tensors if k not in used and not _ignored(
        k, getattr(model, "_keys_to_ignore_on_load_unexpected", None))]
    del tensors  # the parameters hold the views now; the arena lives as long as they do
    name = type(model).__name__
    err = None
    if mismatched:
        err = _error("HOIST_E_SIZE_MISMATCH", "%s: %d tensor(s) of %s do not fit the model: %s"
                     % (path, len(mismatched), name, "; ".join(mismatched[:8])),
                     mismatched=mismatched)
    elif missing:
        err = _error("HOIST_E_NOT_FOUND", "%s: %d parameter(s) of %s are not in the checkpoint: "
                     "%s" % (path, len(missing), name, _names(missing)), missing=missing,
                     unexpected=unexpected)
    elif unexpected:
        err = _error("HOIST_E_BAD_TENSOR", "%s: %d tensor(s) of the checkpoint are not "
                     "parameters or buffers of %s: %s" % (path, len(unexpected), name,
                                                          _names(unexpected)),
                     missing=missing, unexpected=unexpected)
    if err is not None:
        del model  # the traceback keeps this frame: it must not keep the arena too
        raise err

    first = next(p.device for p in model.parameters())
    _place_buffers(model, first)
    left = [n for n, t in list(model.named_parameters()) + list(model.named_buffers())
            if t.device.type == "meta"]
    if left:
        del model
        raise _error("HOIST_E_NOT_FOUND", "%s: %s of %s got no value" % (path, _names(left), name),
                     missing=left)
    if len(_module_devices(model)) > 1:
        model.hf_device_map = _dispatch(model)
    model.eval()
    _generation_config(model, directory)
    model.hoist_stats = stats
    marks["ready"] = time.perf_counter()
    model.hoist_timeline = {k: round(v - start, 6) for k, v in marks.items()}
    _log.info("%s: %s built from %s in %.3f s of loading (%s)", path, name, stats.get("path"),
              stats.get("seconds", 0.0), ", ".join(sorted({str(p.device)
                                                           for p in model.parameters()})))
    return model


def _generation_config(model, directory):
    """generation_config.json where the checkpoint has one, as from_pretrained reads it."""
    if not os.path.isfile(os.path.join(directory, "generation_config.json")):
        return
    try:
        model.generation_config = _tf.GenerationConfig.from_pretrained(directory)
    except (OSError, ValueError, json.JSONDecodeError) as e:
        _log.warning("%s: generation_config.json not used: %s", directory, e)
