#!/usr/bin/env bash
# Runs every libFuzzer target built in BUILD_DIR (from fuzz/fuzz_*.c) for SECONDS each, one after the other.
#   fuzz/run.sh BUILD_DIR SECONDS
# Seeds, rebuilt on every run in BUILD_DIR/fuzz/seeds: the ABC files of tests/ and the first tunes of each
# shared collection (one tune per file), plus fuzz/seeds/<target>/ when a target brings its own. Inputs the
# fuzzer finds go to BUILD_DIR/fuzz/corpus/<target> (kept between runs); a crash leaves its input in
# BUILD_DIR/fuzz/artifacts/. Exits non-zero when a target crashes (sanitizer report, abort, leak, timeout,
# out of memory), 0 otherwise.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: fuzz/run.sh BUILD_DIR SECONDS" >&2
  exit 2
fi
build=$1
seconds=$2
root=$(cd "$(dirname "$0")/.." && pwd)
shared=$root/../shared/data
tunes_per_collection=${FUZZ_SEED_TUNES:-200}
work=$build/fuzz

# One tune per seed file: split a file at its X: lines.
split_tunes() { # FILE PREFIX LIMIT
  awk -v prefix="$2" -v limit="$3" '
    /^X:/ { n++; if (n > limit) exit; out = sprintf("%s%05d.abc", prefix, n) }
    /^$/ && out { close(out); out = "" }
    out { print > out }' "$1"
}

rm -rf "$work/seeds"
mkdir -p "$work/seeds/abc" "$work/artifacts"
i=0
while IFS= read -r -d '' f; do
  i=$((i + 1))
  split_tunes "$f" "$work/seeds/abc/tests$i-" 1000
done < <(find "$root/tests" -name '*.abc' -print0 2>/dev/null)
if [[ -d $shared ]]; then
  for f in "$shared"/*/*.abc; do
    split_tunes "$f" "$work/seeds/abc/$(basename "$f" .abc)-" "$tunes_per_collection"
  done
else
  echo "fuzz/run.sh: no shared data at $shared; seeding from tests/ only" >&2
fi

targets=()
for src in "$root"/fuzz/fuzz_*.c; do
  targets+=("$(basename "$src" .c)")
done
failed=()
for t in "${targets[@]}"; do
  bin=$work/$t
  if [[ ! -x $bin ]]; then
    echo "fuzz/run.sh: $bin not built (build with 'make build-fuzz')" >&2
    failed+=("$t(not built)")
    continue
  fi
  mkdir -p "$work/corpus/$t"
  seed_dirs=("$work/seeds/abc")
  [[ -d $root/fuzz/seeds/$t ]] && seed_dirs+=("$root/fuzz/seeds/$t")
  echo "== $t: ${seconds}s"
  if "$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
       -artifact_prefix="$work/artifacts/$t-" "$work/corpus/$t" "${seed_dirs[@]}" >"$work/$t.log" 2>&1; then
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$work/$t.log" || true
  else
    echo "fuzz/run.sh: $t FAILED; last lines of $work/$t.log:" >&2
    tail -40 "$work/$t.log" >&2
    failed+=("$t")
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz/run.sh: failures: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz/run.sh: ${#targets[@]} target(s), ${seconds}s each, no crash"
