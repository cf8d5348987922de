"""Drugs: the classes (classes.yaml) and the formulary (formulary.yaml), at the bottom of the import graph.

Every layer above (records, knowledge, safety, prompts, evaluation, cohort) reads drugs from here; this package
imports only `clinical_data` and `errors` (docs/design.md, "Drug classes").
"""
