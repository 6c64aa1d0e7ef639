#!/usr/bin/env bash
# Mutation testing of autolog's core promises with mutmut 3 (slow: not part of CI).
#
#   pip install -c constraints.txt -e ".[mutation]"      # the [test] install plus mutmut
#   tests/mutation/run.sh                     # the core mutants (below), resuming an earlier run
#   tests/mutation/run.sh --fresh             # forget earlier results (mutants/ is rebuilt)
#   tests/mutation/run.sh 'autolog.lineage.*' # only these mutants (mutmut names, globs allowed)
#
# Environment: PYTHON (default .venv/bin/python, else python3); MUTMUT_CHILDREN (mutants tested at
# once, default 1: each runs the tests that reach the mutated function, in one process).
# Configuration: [tool.mutmut] in pyproject.toml. Results: printed at the end, and `mutmut results`,
# `mutmut show NAME`, `mutmut browse` (run from the repo root) afterwards. Record the run in
# tests/README.md. mutmut writes its copy of the sources and its results to mutants/ (git-ignored).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-}
if [[ -z $PYTHON ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if ! "$PYTHON" -c "import mutmut" 2>/dev/null; then
    echo "mutmut is not installed for $PYTHON: pip install -c constraints.txt -e '.[mutation]'" >&2
    exit 2
fi

if [[ ${1:-} == --fresh ]]; then
    shift
    rm -rf mutants
fi

# The core: every function of binding/core.py (wrapper, nesting guard, _fence, rank check),
# lineage.py, the stat-cache key (snapshots/identity.py), retention, the fence's rename
# (storage/set_aside.py), a snapshot's bytes (storage/objects.py: copied, hashed, published,
# fetched) and the pipeline's threads and stalls (snapshots/worker.py), a job's staged/done flags (snapshots/lazy_event.py); of the two big files only the fence (SnapshotPipeline.fence) and the lineage query
# (MetadataStore.producer_of).
CORE=(
    'autolog.binding.core.*'
    'autolog.lineage.*'
    'autolog.snapshots.identity.*'
    'autolog.snapshots.retention.*'
    'autolog.storage.set_aside.*'
    'autolog.storage.objects.*'
    'autolog.storage.filesystem_type.*'
    'autolog.snapshots.worker.*'
    'autolog.snapshots.lazy_event.*'
    'autolog.snapshots.pipeline.xǁSnapshotPipelineǁfence__mutmut_*'
    'autolog.db.store.xǁMetadataStoreǁproducer_of__mutmut_*'
)
if [[ $# -gt 0 ]]; then MUTANTS=("$@"); else MUTANTS=("${CORE[@]}"); fi

# sitecustomize.py + the pytest plugin there: calls made by test subprocesses count for mutmut.
export PYTHONPATH="$ROOT/tests/mutation${PYTHONPATH:+:$PYTHONPATH}"

started=$(date +%s)
status=0
"$PYTHON" -m mutmut run --max-children "${MUTMUT_CHILDREN:-1}" "${MUTANTS[@]}" || status=$?
echo "mutmut run: exit $status after $(( $(date +%s) - started )) s"

# Per-file counts for the selected mutants, and every mutant that was not killed.
"$PYTHON" - "${MUTANTS[@]}" <<'PY'
import collections, fnmatch, json, sys
from pathlib import Path
from mutmut.stats import status_by_exit_code

patterns = sys.argv[1:]
counts = collections.defaultdict(collections.Counter)
open_ones = []
for meta in sorted(Path("mutants").rglob("*.py.meta")):
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    module = str(meta.relative_to("mutants"))[: -len(".meta")]
    for name, code in sorted(codes.items()):
        if not any(fnmatch.fnmatch(name, p) for p in patterns):
            continue
        status = status_by_exit_code[code]
        counts[module][status] += 1
        if status != "killed":
            open_ones.append((status, name))
cols = ["killed", "survived", "timeout", "no tests", "not checked", "suspicious", "segfault"]
print("\n| file | " + " | ".join(cols) + " | kill rate |")
print("|---" * (len(cols) + 2) + "|")
total = collections.Counter()
for module, c in sorted(counts.items()):
    total.update(c)
    tested = c["killed"] + c["survived"] + c["timeout"] + c["no tests"]
    rate = f"{100 * (c['killed'] + c['timeout']) / tested:.0f}%" if tested else "-"
    print(f"| {module} | " + " | ".join(str(c[k]) for k in cols) + f" | {rate} |")
tested = total["killed"] + total["survived"] + total["timeout"] + total["no tests"]
rate = f"{100 * (total['killed'] + total['timeout']) / tested:.0f}%" if tested else "-"
print("| total | " + " | ".join(str(total[k]) for k in cols) + f" | {rate} |")
print("\n(kill rate = (killed + timeout) / (killed + survived + timeout + no tests))")
if open_ones:
    print("\nNot killed (see each with: mutmut show NAME):")
    for status, name in open_ones:
        print(f"  {status:12} {name}")
PY
exit "$status"
