"""remotesam-bench: the benchmark harness (plugin contract, runner, store, reports, gate, CLI)."""
