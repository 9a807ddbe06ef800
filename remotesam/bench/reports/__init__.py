"""Reports over stored runs: leaderboard, radar chart, per-sample export, HTML report.

They read run documents and the store (:mod:`remotesam.bench.records`) and never import the
evaluator.
"""
