"""Built-in task plugins of remotesam-bench (import name ``remotesam_plugins``).

One module per task, each registered under the ``remotesam_bench.tasks`` entry-point group in
our ``pyproject.toml`` exactly as a third-party package would register its own.
"""
