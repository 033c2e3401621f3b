"""The stand-in's AutoConfig table, where transformers keeps its own: the model_type names it
maps to config classes (hoist.transformers checks a config.json's against it before loading)."""

CONFIG_MAPPING_NAMES = {"llama": "LlamaConfig"}
