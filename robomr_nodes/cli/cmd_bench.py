"""``robomr bench NAME [--json FILE]``: run a benchmark, print its table, optionally save JSON."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from bench import BENCHMARKS


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "bench",
        help="run a benchmark (speed/quality with side-by-side baselines)",
        description="Benchmarks print a table and ratios against baselines measured in the "
        "same run. Names: " + ", ".join(sorted(BENCHMARKS)) + ", or 'all'.",
    )
    bench_sub = parser.add_subparsers(dest="bench_name", metavar="NAME", required=True)
    for name, module_path in sorted(BENCHMARKS.items()):
        module = importlib.import_module(module_path)
        p = bench_sub.add_parser(name, help=module.DESCRIPTION, description=module.DESCRIPTION)
        p.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
        module.add_arguments(p)
        p.set_defaults(func=_run_one, bench_module=module_path)
    p_all = bench_sub.add_parser("all", help="run every benchmark with its defaults")
    p_all.add_argument("--json-dir", type=Path, metavar="DIR", help="write NAME.json per benchmark")
    p_all.set_defaults(func=_run_all)


def _run_one(args: argparse.Namespace) -> int:
    report = importlib.import_module(args.bench_module).run(args)
    print(report.render())
    if args.json:
        report.write_json(args.json)
        print(f"wrote {args.json}")
    return 0


def _run_all(args: argparse.Namespace) -> int:
    for name, module_path in sorted(BENCHMARKS.items()):
        module = importlib.import_module(module_path)
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        report = module.run(parser.parse_args([]))
        print(report.render() + "\n")
        if args.json_dir:
            args.json_dir.mkdir(parents=True, exist_ok=True)
            report.write_json(args.json_dir / f"{name}.json")
    return 0
