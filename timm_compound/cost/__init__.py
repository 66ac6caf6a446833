"""What a plan costs: measure (params, MACs, activations: the cost model, or an exact count on meta),
model (the cost model: skeletons of memoised blocks) with blocks, replay, traced, keys, counter and
module_match, memory (one training step's timeline), reference (fvcore on a real model), fit (closed-loop
budgets), table and plot (a family over phi); latency (timings on this machine) with runtimes (eager,
torch.compile, onnxruntime), latency_cache (timings kept per device) and latency_search (where timings
cross a budget)."""
