"""What mmdiff's tools share and the library does not need: command-line and runner set-up
(:mod:`~mmdiff.apis.runner_config`), the linear-probe fit and feature PCA of the feature tools, and the benchmarks
(:mod:`mmdiff.apis.benchmarks`, run by ``tools/analysis_tools/benchmark.py``). Nothing here registers a module."""
