"""From a rule file to an nn.Module: the scaling engine.

schema (rule and registry files) -> rulebook (loading) -> structure (layouts in constructor
arguments) + rounding -> plan (ScalePlan, pure data) -> build (through timm's own entrypoint);
catalog (registered names), stages (where a model keeps its stages), weights (checking
safetensors against a plan) and timm_adapter (the only module touching timm internals).
"""
