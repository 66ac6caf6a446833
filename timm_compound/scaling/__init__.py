"""From a rule file to an nn.Module: the scaling engine.

schema (rule and registry files) -> rulebook (loading) -> structure (reads and writes constructor
arguments through layouts/, one module per shape: counts, block_args, rows, separated, derived)
+ rounding -> plan (ScalePlan, pure data; readback builds on meta where the constructor decides
the stages) -> build (through timm's own entrypoint); catalog (registered names), stages (where a
model keeps its stages and blocks), weights (checking safetensors against a plan) and
timm_adapter (the only module touching timm internals).
"""
