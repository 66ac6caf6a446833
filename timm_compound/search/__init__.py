"""The coefficient search: step 1 of the EfficientNet method, alpha, beta, gamma by a grid of proxy trainings.

- ``grid``: the points (step grid under the constraint, plus single-dimension references)
- ``candidates``: each point planned at phi and measured after rounding (or fitted to equal cost)
- ``storage`` / ``study``: Optuna RDB storage (SQLite default, any SQLAlchemy URL; the URL handling is
  ``timm_compound.storage``'s, shared with the experiment's ledger) and the study's settings
- ``objective`` / ``workers``: a trial is a proxy training; workers run trials until the study is complete
- ``rungs``: synchronous successive halving, one study per rung, checkpoints continued
- ``results`` / ``plots``: the table, the best coefficients, CSV, JSON and PNG files
- ``confidence``: the winner against chance, the runner-up and the rule's current coefficients
- ``write_rule``: the found coefficients as a user rule replacing the shipped one
- ``api``: ``search()``, the entry point
"""
