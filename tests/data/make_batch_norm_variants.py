import hashlib, json, sys, torch, timm
import timm_compound as tc
out = {}
for name in sorted(n for n in timm.list_models(module="compound_scaled") if "_cs_" in n):
    with torch.device("meta"):
        m = timm.create_model(name, pretrained=False)
    sd = m.state_dict()
    keys = "\n".join(f"{k}:{tuple(v.shape)}" for k, v in sd.items())
    out[name] = {"params": sum(p.numel() for p in m.parameters()), "state_dict": hashlib.sha256(keys.encode()).hexdigest()[:16]}
json.dump(out, open(sys.argv[1], "w"), indent=1, sort_keys=True)
print(len(out))
