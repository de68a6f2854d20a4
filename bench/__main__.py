"""./run bench <benchmark> [options]

Each benchmark is a module with NAME, a docstring (its help), add_arguments(parser)
and main(args) -> exit status; adding one is adding it to BENCHMARKS.
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType

from bench import cold_start, db_throughput, load, path_cpu, redis_calls, sync

BENCHMARKS: tuple[ModuleType, ...] = (db_throughput, cold_start, load, sync, redis_calls, path_cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./run bench", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for module in BENCHMARKS:
        doc = (module.__doc__ or "").strip()
        sub = commands.add_parser(
            module.NAME,
            help=doc.split("\n\n")[0].replace("\n", " "),
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(run=module.main)
    args = parser.parse_args(argv)
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
