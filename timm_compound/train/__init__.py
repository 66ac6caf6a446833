"""Training and evaluating scaled models with timm's own parts (optimizer, scheduler, transforms, Mixup, EMA).

- ``api``: the public ``train()`` and ``evaluate()`` (re-exported as ``timm_compound.train`` /
  ``timm_compound.evaluate``, which is why code imports the modules below by their full path)
- ``models``: a model, registered name, base or ScalePlan -> the nn.Module to train (resolution override)
- ``data`` / ``builtin``: datasets (image folders, timm's ``torch/`` and ``hfds/`` names, the offline ``builtin:digits``)
- ``loaders``: timm transforms, a data order that is a function of (seed, epoch), distributed shards
- ``setup``: checked resolutions; timm's optimizer, scheduler, loss, Mixup, EMA, grad scaler
- ``engine``: one training epoch and one evaluation pass; ``trainer``: the epoch loop
- ``run`` / ``checkpoint``: run folders (run.json, metrics.csv, resume checks) and their checkpoints;
  ``curves``: curves.png; ``recorded``: a finished run read back (for eval and ``publish --run``)
- ``distributed``: torchrun / DDP; ``progress``: a rich bar, plain lines or nothing
- ``settings`` / ``results``: what a run was asked to do, and what it measured
- ``predictions``: per-image results of an evaluation (predictions.csv); ``statistics``: intervals,
  paired tests and Holm's correction over such results (used by experiments and the search)
"""
