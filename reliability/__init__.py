"""The reliability and security suite's long runs, and RELIABILITY.md.

Each part is a module with NAME, a docstring and `run(settings) -> Outcome`:

* `torture`: seeded concurrent workloads over HTTP against the local server, with
  faults injected while they run, judged by `checker`;
* `fuzz`: schemathesis against public/openapi.yaml on the live local server;
* `security`: credentials, cross-student access, database roles, secrets in logs,
  size limits and floods.

`./run reliability` runs every part at its long size and rewrites RELIABILITY.md, one
section per part (`<!-- reliability:<name>:start/end -->`), with the seeds used. The
test command runs the same code at its short size (tests/reliability).
"""
