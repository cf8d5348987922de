"""Evaluation: every engine on held-out visits, scored part by part (drug classes, actions, labs,
safety, guideline concordance) and by text overlap, with bootstrap 95% intervals.

`run.evaluate` / `diaguide evaluate` write `metrics.json` and `report.html`; `metrics` holds the
exact definitions; `engines` the protocol an engine implements to be compared.
"""
