"""What the benchmark and comparison scripts beside this file share: a checkpoint's files, and the
page cache dropped or filled before a load."""

import json
import os


def shards(model):
    """The .safetensors files of a checkpoint (a directory, an index or a file), as safetensors
    users would list them."""
    if os.path.isdir(model):
        index = os.path.join(model, "model.safetensors.index.json")
        if not os.path.exists(index):
            return [os.path.join(model, "model.safetensors")]
        model = index
    if model.endswith(".json"):
        with open(model) as f:
            names = sorted(set(json.load(f)["weight_map"].values()))
        return [os.path.join(os.path.dirname(model), n) for n in names]
    return [model]


def drop_caches():
    """Empties the page cache (root only: OSError otherwise)."""
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def warm_up(files):
    """Reads every file once, so that the page cache holds all of it."""
    for path in files:
        with open(path, "rb", buffering=0) as f:
            while f.read(64 << 20):
                pass
