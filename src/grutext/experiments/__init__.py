"""Experiments over many trainings: `grutext compare` (cells under the same conditions, matched sizes) and
`grutext sweep` (a grid of any config fields), each run a (point, seed) trained through the task's public
training function into its own model folder, resumable, summarised with paired bootstrap intervals.

Modules: `plan` (what an experiment is), `matching` (hidden sizes with matched parameter counts), `runner`
(processes, resume, latency), `worker` (one run), `stats` (spreads, paired bootstrap), `report` (tables,
CSV, JSON, plots, HTML), `baseline` (TF-IDF row), `cli` (the two commands).
"""
