"""The subcommands of ``tools/analysis_tools/benchmark.py``, one module each (``backbone``, ``cache``, ``extract``,
``step``: ``add_arguments``, ``output_name``, a benchmark function and ``print_table``), and the timers they share
(:mod:`~mmdiff.apis.benchmarks.timing`)."""
