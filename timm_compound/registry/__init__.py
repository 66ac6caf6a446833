"""Registered variants as timm models: compound_scaled (the timm model module holding the
entrypoints), register (registry files -> timm), user_rules (load_rules, TIMM_COMPOUND_RULES_PATH)."""
