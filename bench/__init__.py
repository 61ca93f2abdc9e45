"""Benchmarks behind ``robomr bench NAME``.

Each benchmark is a module with ``DESCRIPTION: str``, ``add_arguments(parser)`` and
``run(args) -> BenchReport``. Benchmarks measure speed and quality and print ratios against
baselines run side by side in the same process; they are not tests.
"""

# name -> module path. Add one line per benchmark.
BENCHMARKS: dict[str, str] = {
    "runtime": "bench.bench_runtime",
    "render": "bench.bench_render",
    "gsclo": "bench.bench_gsclo",
    "sim": "bench.bench_sim",
    "detector": "bench.bench_detector",
    "croa": "bench.bench_croa",
    "e2e": "bench.bench_e2e",
    "lm": "bench.bench_lm",
    "reliability": "bench.bench_reliability",
    "mapmatch": "bench.bench_mapmatch",
    "cluster": "bench.bench_cluster",
    "serving": "bench.bench_serving",
    "autoscale": "bench.bench_autoscale",
}
