"""A stand-in for the few parts of Hugging Face transformers that hoist.transformers uses, for
machines without transformers (Debian packages no python3-transformers; CI has no package
index). python/tests/test_transformers.py puts it on sys.path only when the real one does not
import: the glue's own logic (building on meta, assigning hoist's tensors, tying, buffers,
errors) is then tested here, and the real API on the device machine.

It is a small Llama written the way transformers' modeling_llama computes it (RMSNorm in f32,
rotary halves, grouped-query attention, SwiGLU), checked against `hoist run`'s CPU reference in
the test. Its surface follows transformers 4.x: from_config(config, torch_dtype=...),
post_init() tying the embeddings, tie_weights(), base_model_prefix, _keys_to_ignore_on_load_*.
"""

import glob
import json
import math
import os

import torch
from torch import nn

__version__ = "4.40.0-hoist-standin"


class PretrainedConfig:
    def __init__(self, **kwargs):
        self.tie_word_embeddings = False
        self.torch_dtype = None
        self.__dict__.update(kwargs)

    def get_text_config(self, decoder=False):
        return self


class LlamaConfig(PretrainedConfig):
    model_type = "llama"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if getattr(self, "head_dim", None) is None:
            self.head_dim = self.hidden_size // self.num_attention_heads
        if getattr(self, "num_key_value_heads", None) is None:
            self.num_key_value_heads = self.num_attention_heads
        self.rope_theta = getattr(self, "rope_theta", 10000.0)
        self.rms_norm_eps = getattr(self, "rms_norm_eps", 1e-6)


class AutoConfig:
    @staticmethod
    def from_pretrained(directory, trust_remote_code=False):
        with open(os.path.join(directory, "config.json")) as f:
            values = json.load(f)
        if values.get("model_type") != "llama":
            raise ValueError("the stand-in knows llama only, not %r" % values.get("model_type"))
        return LlamaConfig(**values)


class GenerationConfig:
    @staticmethod
    def from_pretrained(directory):
        with open(os.path.join(directory, "generation_config.json")) as f:
            out = GenerationConfig()
            out.__dict__.update(json.load(f))
            return out


class CausalLMOutput(dict):
    def __getattr__(self, name):
        return self[name]


class PreTrainedModel(nn.Module):
    base_model_prefix = "model"
    _keys_to_ignore_on_load_unexpected = None
    _keys_to_ignore_on_load_missing = None

    def post_init(self):
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
        self.tie_weights()

    def tie_weights(self):
        if self.config.tie_word_embeddings:
            self.get_output_embeddings().weight = self.get_input_embeddings().weight

    @property
    def device(self):
        return next(self.parameters()).device

    @torch.no_grad()
    def generate(self, input_ids, max_new_tokens=8, do_sample=False, attention_mask=None):
        assert not do_sample
        ids = input_ids
        for _ in range(max_new_tokens):
            logits = self(ids).logits
            ids = torch.cat([ids, logits[:, -1:].argmax(-1).to(ids.device)], dim=1)
        return ids


class LlamaRMSNorm(nn.Module):
    def __init__(self, hidden, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.to(torch.float32)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


class LlamaRotaryEmbedding(nn.Module):
    def __init__(self, config, device=None):
        super().__init__()
        self.config = config
        dim = config.head_dim
        inv_freq = 1.0 / (config.rope_theta ** (
            torch.arange(0, dim, 2, dtype=torch.int64).to(device=device, dtype=torch.float) / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, x, position_ids):
        freqs = position_ids[:, :, None].float() * self.inv_freq[None, None, :].float()
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


def _rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


class LlamaAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = (config.num_attention_heads,
                                                    config.num_key_value_heads, config.head_dim)
        h = config.hidden_size
        self.q_proj = nn.Linear(h, self.heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(h, self.kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(h, self.kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.heads * self.head_dim, h, bias=False)

    def forward(self, x, position_embeddings):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        cos, sin = (e[:, None] for e in position_embeddings)
        q, k = q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin
        groups = self.heads // self.kv_heads
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        scores = q @ k.transpose(2, 3) / math.sqrt(self.head_dim)
        mask = torch.full((t, t), float("-inf"), device=x.device).triu(1)
        probs = torch.softmax(scores.float() + mask, dim=-1).to(q.dtype)
        out = (probs @ v).transpose(1, 2).reshape(b, t, -1)
        return self.o_proj(out)


class LlamaMLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        h, i = config.hidden_size, config.intermediate_size
        self.gate_proj = nn.Linear(h, i, bias=False)
        self.up_proj = nn.Linear(h, i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)

    def forward(self, x):
        return self.down_proj(nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.self_attn = LlamaAttention(config)
        self.mlp = LlamaMLP(config)
        self.input_layernorm = LlamaRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = LlamaRMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, h, position_embeddings=None):
        h = h + self.self_attn(self.input_layernorm(h), position_embeddings=position_embeddings)
        return h + self.mlp(self.post_attention_layernorm(h))


class LlamaModel(PreTrainedModel):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(LlamaDecoderLayer(config)
                                    for _ in range(config.num_hidden_layers))
        self.norm = LlamaRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rotary_emb = LlamaRotaryEmbedding(config)

    def forward(self, input_ids):
        h = self.embed_tokens(input_ids)
        positions = torch.arange(input_ids.shape[1], device=h.device)[None]
        pe = self.rotary_emb(h, positions)
        for layer in self.layers:
            h = layer(h, position_embeddings=pe)
        return self.norm(h)


class LlamaForCausalLM(PreTrainedModel):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.model = LlamaModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def get_output_embeddings(self):
        return self.lm_head

    def forward(self, input_ids):
        return CausalLMOutput(logits=self.lm_head(self.model(input_ids)).float())


_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8}


def _read_safetensors(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        lo, hi = entry["data_offsets"]
        raw = bytearray(data[lo:hi])
        t = torch.frombuffer(raw, dtype=_DTYPES[entry["dtype"]]) if raw else \
            torch.empty(0, dtype=_DTYPES[entry["dtype"]])
        out[name] = t.reshape(entry["shape"]).clone()
    return out


class AutoModelForCausalLM:
    @staticmethod
    def from_config(config, torch_dtype=None, **kwargs):
        previous = torch.get_default_dtype()
        if torch_dtype is not None:
            torch.set_default_dtype(torch_dtype)
        try:
            return LlamaForCausalLM(config)
        finally:
            torch.set_default_dtype(previous)

    @staticmethod
    def from_pretrained(directory, torch_dtype=None, dtype=None, device_map=None):
        """A model built as usual, then given the checkpoint's tensors (converted to its dtype),
        as transformers' from_pretrained does: the reference the tests compare with."""
        config = AutoConfig.from_pretrained(directory)
        model = AutoModelForCausalLM.from_config(config, torch_dtype=torch_dtype or dtype)
        state = {}
        for path in sorted(glob.glob(os.path.join(directory, "*.safetensors"))):
            state.update(_read_safetensors(path))
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [m for m in missing if not (config.tie_word_embeddings and m == "lm_head.weight")]
        assert not missing and not unexpected, (missing, unexpected)
        model.tie_weights()
        return model.to(device_map).eval() if device_map else model.eval()
