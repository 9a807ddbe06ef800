"""Records: what a run leaves behind and what reads it back.

:mod:`~remotesam.bench.records.store` (the SQLite prediction cache),
:mod:`~remotesam.bench.records.identity` (cache keys: weights, settings, input fingerprints),
:mod:`~remotesam.bench.records.results` (run documents and the one resolver of a results
directory's runs), :mod:`~remotesam.bench.records.published` (the papers' numbers),
:mod:`~remotesam.bench.records.stats` (confidence intervals and paired tests on stored
per-sample values) and :mod:`~remotesam.bench.records.trackers` (TensorBoard / W&B).
"""
