"""Writes batch_norm_variants.json: every registered variant's parameter count and a digest of its
state-dict keys and shapes (built on the meta device). Run once, before the norm choice existed, so
tests/test_norm.py can check that norm="batch" still builds exactly those models."""

import hashlib
import json
import sys

import timm
import torch

import timm_compound  # noqa: F401  (registers the variants)

out = {}
for name in sorted(n for n in timm.list_models(module="compound_scaled") if "_cs_" in n):
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False)
    keys = "\n".join(f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items())
    out[name] = {
        "params": sum(p.numel() for p in model.parameters()),
        "state_dict": hashlib.sha256(keys.encode()).hexdigest()[:16],
    }
with open(sys.argv[1], "w") as file:
    json.dump(out, file, indent=1, sort_keys=True)
print(len(out))
