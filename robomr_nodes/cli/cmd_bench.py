"""``robomr bench NAME [--json FILE] [options]``: run a benchmark, print its table.

Benchmark modules are imported only when run, so ``robomr --help`` stays fast and one broken
benchmark cannot break the CLI.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from bench import BENCHMARKS
from robomr_nodes.cli.main import CliError
from robomr_nodes.outputs import OutputError, check_output_file


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "bench",
        help="run a benchmark (speed/quality with side-by-side baselines)",
        description="Benchmarks print a table and ratios against baselines measured in the "
        "same run. `robomr bench NAME --help` shows a benchmark's options.",
    )
    parser.add_argument(
        "name",
        choices=[*sorted(BENCHMARKS), "all"],
        metavar="NAME",
        help="one of: " + ", ".join(sorted(BENCHMARKS)) + ", or all",
    )
    parser.add_argument(
        "bench_args",
        nargs=argparse.REMAINDER,
        help="options of the benchmark (see robomr bench NAME --help)",
    )
    parser.set_defaults(func=_run)


def _parse(name: str, argv: list[str]) -> tuple[object, argparse.Namespace]:
    module = importlib.import_module(BENCHMARKS[name])
    p = argparse.ArgumentParser(prog=f"robomr bench {name}", description=module.DESCRIPTION)
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    module.add_arguments(p)
    return module, p.parse_args(argv)


def _run(args: argparse.Namespace) -> int:
    names = sorted(BENCHMARKS) if args.name == "all" else [args.name]
    if args.name == "all" and args.bench_args:
        raise CliError("`robomr bench all` takes no benchmark options")
    for name in names:
        module, bench_args = _parse(name, args.bench_args)
        if bench_args.json:
            _check(bench_args.json)
        try:
            report = module.run(bench_args)
        except ValueError as err:  # benchmarks reject bad settings with ValueError
            raise CliError(f"bench {name}: {err}") from None
        print(report.render() + "\n")
        if bench_args.json:
            try:  # the report's own writer: some benchmarks fix their JSON layout
                report.write_json(bench_args.json)
            except OSError as err:
                raise CliError(f"cannot write {bench_args.json}: {err.strerror or err}") from None
            print(f"wrote {bench_args.json}")
    return 0


def _check(path: Path) -> None:
    """--json is checked before the benchmark runs (minutes must not be wasted)."""
    try:
        check_output_file(path)
    except OutputError as err:
        raise CliError(str(err)) from None
