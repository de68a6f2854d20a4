"""Benchmarks: `./run bench <name> [options]`. Each one measures, checks that what it
measured was real work, and can write its section of BENCHMARKS.md (--report)."""
