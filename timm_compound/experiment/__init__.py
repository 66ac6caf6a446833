"""Scaling experiments: depth vs width vs resolution vs compound scaling at equal real cost (the
EfficientNet paper's Figure 3 / Table 3 on your own base and data), trained, tabled, plotted and reported.

- ``api``: the public ``experiment()`` (re-exported as ``timm_compound.experiment``, which is why
  code imports the modules below by their full path)
- ``inputs``: the experiment's settings, checked (budgets, strategies, training arguments)
- ``strategies``: each strategy's direction in (d, w, r) and its variant at a budget of real cost
- ``references``: other timm models trained beside the variants
- ``runner``: the experiment folder, one run folder per model and seed, skip / resume, progress across runs
- ``ledger`` / ``workers``: the runs in a database (SQLite or PostgreSQL) that any number of worker
  processes share, claim, beat for and take over
- ``verdicts``: each model's interval, the paired comparisons, Holm's correction, a sentence per budget
  (the statistics themselves: ``timm_compound.train.statistics``, shared with the search)
- ``curve_fit``: a saturating curve of top-1 against cost per strategy, with its bootstrap band
- ``table`` / ``plots`` / ``cam`` / ``report``: table.csv and table.md, the figures, class
  activation maps, and report.html holding all of them
- ``results``: what an experiment measured
"""
