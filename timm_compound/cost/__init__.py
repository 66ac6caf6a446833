"""What a plan costs: measure (params, MACs, activations on meta), memory (one training step),
reference (fvcore on a real model), fit (closed-loop budgets), table and plot (a family over phi)."""
