"""A fast first pass over mutmut's mutants: each one against a few named test files.

mutmut's own run (run.sh) tests each mutant against every selected test that reaches it: 2-5 minutes
per surviving mutant of a core function on a 2-core machine, a night for the core list. This pass runs
each mutant against the test files given (seconds each, stopping at the first failure), so those
tests' kills are known in minutes and only the survivors need a longer run or a reading. It changes
nothing in mutmut's results: it prints each outcome and the survivors, and keeps them in
mutants/triage.json (--resume goes on from there).

    python tests/mutation/triage.py --generate         # (re)make mutants/ from the sources, no test run
    python tests/mutation/triage.py 'autolog.binding.core.x_path_filter__mutmut_*' \\
        -- tests/unit/test_path_argument.py tests/unit/test_patching.py

Run it from the repository root of a copy (mutants/ is written there), with the [mutation] install.
The unmutated code must pass the given tests first (checked, as mutmut does).
"""
from __future__ import annotations

import argparse
import collections
import fnmatch
import json
import os
import subprocess
import sys
import time
from pathlib import Path

PYTEST = ["-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:cacheprovider"]


def generate() -> None:
    """mutants/ as `mutmut run` makes it before its first test run (mutmut 3.8)."""
    from mutmut import __main__ as mutmut_main

    mutmut_main.set_mutant_under_test("mutant_generation")
    Path("mutants").mkdir(exist_ok=True)
    mutmut_main.copy_src_dir()
    mutmut_main.copy_also_copy_files()
    mutmut_main.setup_source_paths()
    stats = mutmut_main.create_mutants(os.cpu_count() or 1)
    print(f"mutants/ generated: {stats.mutated} files mutated")


def mutant_names(patterns: list[str]) -> list[str]:
    names = []
    for meta in sorted(Path("mutants").rglob("*.py.meta")):
        names += [n for n in json.loads(meta.read_text())["exit_code_by_key"]
                  if any(fnmatch.fnmatch(n, p) for p in patterns)]
    return names


def run_tests(mutant: str, tests: list[str], timeout: float) -> str:
    env = dict(os.environ, MUTANT_UNDER_TEST=mutant, AUTOLOG_STRICT="1")
    try:
        proc = subprocess.run([sys.executable, *PYTEST, *tests], cwd="mutants", env=env, timeout=timeout,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return "timeout"
    return {0: "survived", 5: "no tests"}.get(proc.returncode, "killed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generate", action="store_true", help="make mutants/ first")
    parser.add_argument("--timeout", type=float, default=60, help="seconds per mutant (a timeout is a kill)")
    parser.add_argument("--resume", action="store_true", help="keep the results in mutants/triage.json for these tests")
    parser.add_argument("patterns", nargs="*", help="mutant names (mutmut's, globs allowed), then -- and test files")
    argv = sys.argv[1:]
    tests = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if args.generate:
        generate()
    if not args.patterns:
        return
    if not tests:
        parser.error("name the test files after --")
    names = mutant_names(args.patterns)
    if not names:
        raise SystemExit(f"no mutant matches {args.patterns}: run with --generate first?")
    clean = run_tests("", tests, args.timeout)
    if clean != "survived":
        raise SystemExit(f"the unmutated code does not pass {tests} ({clean}): fix that first")
    saved = Path("mutants/triage.json")
    results: dict[str, str] = {}
    if args.resume and saved.exists() and json.loads(saved.read_text())["tests"] == tests:
        results = {n: r for n, r in json.loads(saved.read_text())["results"].items() if n in names}
    started = time.monotonic()
    for i, name in enumerate(names, 1):
        if name not in results:
            results[name] = run_tests(name, tests, args.timeout)
            saved.write_text(json.dumps({"tests": tests, "results": results}, indent=1))
        print(f"[{i}/{len(names)} {time.monotonic() - started:5.0f} s] {results[name]:9} {name}", flush=True)
    counts = collections.Counter(results.values())
    print(f"\n{len(names)} mutants against {' '.join(tests)}: " +
          ", ".join(f"{counts[k]} {k}" for k in ("killed", "timeout", "survived", "no tests") if counts[k]))
    survivors = [n for n, r in results.items() if r in ("survived", "no tests")]
    if survivors:
        print("Not killed by these tests (see each with: mutmut show NAME):")
        print("\n".join(f"  {n}" for n in survivors))


if __name__ == "__main__":
    main()
