"""The planning core: from a fleet snapshot and a target to a reviewed, sealed plan.

Pure rules (deny-assignment derivation, action matching, fingerprints, lineage, waves, windows,
the planner and `explain`) plus the two file formats the operator edits or reviews: target files
(`target`) and plan files (`planfile`). Nothing here talks to Azure.
"""
