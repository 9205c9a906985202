#!/usr/bin/env bash
# Model-checks the exactly-once protocol (exactlyonce.pml) with spin.
#
#   bash worker/model/check.sh        the correct model under each fault
#                                     profile (must pass), then every mutant
#                                     (spin must find a violation)
#   bash worker/model/check.sh -v     also print each mutant's counterexample
#   bash worker/model/check.sh --full adds larger profiles (several minutes)
#   bash worker/model/check.sh -v FIX  only the cases whose name contains FIX
#
# Exits non-zero if the correct model fails, a search is incomplete (depth,
# memory), or a mutant passes. Needs spin and gcc.
#
# Every run is an exhaustive search (-DCOLLAPSE: exact state compression, no
# bitstate). The combined fault budget of the model (exactlyonce.pml defaults)
# is too big to search here, so the correct model is checked under profiles
# that each search every interleaving of a subset of the faults. Mutants run
# with the default budgets, all faults at once (spin stops at the first
# violation).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
model="$here/exactlyonce.pml"
verbose=0
full=0
only=""
for a in "$@"; do
  case "$a" in
    -v) verbose=1 ;;
    --full) full=1 ;;
    -*) echo "usage: $0 [-v] [--full] [name-substring]" >&2; exit 2 ;;
    *) only="$a" ;;
  esac
done
for tool in spin gcc; do
  command -v "$tool" >/dev/null 2>&1 || { echo "check.sh: $tool not found (apt-get install -y spin gcc)" >&2; exit 2; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/sapq-model.XXXXXX")"
trap 'rm -rf "$work"' EXIT
jobs_max="$(nproc 2>/dev/null || echo 2)"
mutant_timeout=120

# name | expect (pass/fail) | defines [| MEMLIM in MB, default 2048]
cases=(
  # The correct model. NODEDUP (no de-duplication in SAP) is the strictest
  # kind; INVARIANT adds protocol.md's invariant as an assertion.
  # (Largest first, to keep both cores busy to the end.) Profiles:
  # deliveries = every fault but a Redis loss; loss = a Redis loss with
  # SAP faults, refusals, expiry, reprocess and cancel; loss+duplicate and
  # loss+crash add a second concurrent delivery or a worker crash to the loss.
  "nodedup/loss|pass|-DKIND=3 -DINVARIANT -DCRASHES=0 -DDUPS=0"
  "nodedup/loss+duplicate|pass|-DKIND=3 -DINVARIANT -DCRASHES=0 -DSAPFAULTS=1 -DEXPIRIES=0 -DREPROCESSES=0"
  "nodedup/loss+crash|pass|-DKIND=3 -DINVARIANT -DDUPS=0 -DSAPFAULTS=1 -DEXPIRIES=0"
  "nodedup/deliveries|pass|-DKIND=3 -DINVARIANT -DLOSSES=0"
  # JE: the UUID replay store multiplies states; the cancel (kind-independent:
  # it never calls SAP's post) is left to the NODEDUP runs and --full.
  "je/deliveries-no-cancel|pass|-DKIND=1 -DINVARIANT -DLOSSES=0 -DCANCELS=0"
  "je/loss-no-cancel|pass|-DKIND=1 -DINVARIANT -DCRASHES=0 -DDUPS=0 -DEXPIRIES=0 -DCANCELS=0"
  # SI: with INVARIANT no post ever meets an existing document, so M8/108
  # is unreachable and SI's state space equals NODEDUP's; a smaller profile
  # shows the kind builds and passes.
  "si/deliveries-no-cancel|pass|-DKIND=2 -DINVARIANT -DLOSSES=0 -DCANCELS=0"
  # Defence in depth for journal entries: the stable UUID alone covers a
  # missing settle wait...
  "je/uuid-covers-no-settle|pass|-DKIND=1 -DBUG_NO_SETTLE -DLOSSES=0 -DCANCELS=0 -DEXPIRIES=0"
  # ...and the mutants: every one must be caught. Default budgets (all faults).
  "je/BUG_NO_SETTLE+BUG_NEW_UUID_ON_UNKNOWN|fail|-DKIND=1 -DBUG_NO_SETTLE -DBUG_NEW_UUID_ON_UNKNOWN -DLOSSES=0 -DCANCELS=0 -DEXPIRIES=0"
  "je/BUG_SKIP_LOOKUP|fail|-DKIND=1 -DBUG_SKIP_LOOKUP"
  "si/BUG_NO_SETTLE|fail|-DKIND=2 -DBUG_NO_SETTLE"
  "BUG_SKIP_LOOKUP|fail|-DBUG_SKIP_LOOKUP"
  "BUG_NO_SETTLE|fail|-DBUG_NO_SETTLE"
  "BUG_NO_FENCE|fail|-DBUG_NO_FENCE"
  "BUG_NO_CAS|fail|-DBUG_NO_CAS"
  "BUG_CLAIM_FAILED|fail|-DBUG_CLAIM_FAILED"
  "BUG_NO_LOSS_WINDOW|fail|-DBUG_NO_LOSS_WINDOW"
  "BUG_WINDOW_NOW|fail|-DBUG_WINDOW_NOW"
  "BUG_DEADLINE_AFTER_BEGINSEND|fail|-DBUG_DEADLINE_AFTER_BEGINSEND"
  "BUG_RECORD_AFTER_LOSS|fail|-DBUG_RECORD_AFTER_LOSS"
  "BUG_NO_SUSPECT|fail|-DBUG_NO_SUSPECT"
  "BUG_NEW_JOB_PENDING|fail|-DBUG_NEW_JOB_PENDING"
  "BUG_CANCEL_NO_LOOKUP|fail|-DBUG_CANCEL_NO_LOOKUP"
  "BUG_VOLATILE_TERMINAL|fail|-DBUG_VOLATILE_TERMINAL"
  "BUG_BEGINSEND_FAILED|fail|-DBUG_BEGINSEND_FAILED"
  "BUG_RECORD_FAILED|fail|-DBUG_RECORD_FAILED"
  "LAZY_DETECT|fail|-DLAZY_DETECT"
)
if [ "$full" = 1 ]; then
  # Larger exhaustive searches (several minutes, up to a few GB), run first.
  # The model's default budgets (every fault at once) exceed 100 million
  # states for JE and do not fit here; loss+duplicate+crash is the largest
  # combination that does.
  cases=(
    "nodedup/loss+duplicate+crash|pass|-DKIND=3 -DINVARIANT -DSAPFAULTS=1 -DEXPIRIES=0 -DREPROCESSES=0|8192"
    "je/deliveries|pass|-DKIND=1 -DINVARIANT -DLOSSES=0|4096"
    "je/loss|pass|-DKIND=1 -DINVARIANT -DCRASHES=0 -DDUPS=0 -DEXPIRIES=0|4096"
    "je/BUG_NEW_UUID_ON_UNKNOWN alone (redundant: passes)|pass|-DKIND=1 -DBUG_NEW_UUID_ON_UNKNOWN -DLOSSES=0|4096"
    "${cases[@]}"
  )
fi

if [ -n "$only" ]; then
  picked=()
  for c in "${cases[@]}"; do
    case "${c%%|*}" in *"$only"*) picked+=("$c") ;; esac
  done
  [ ${#picked[@]} -gt 0 ] || { echo "check.sh: no case matches $only" >&2; exit 2; }
  cases=("${picked[@]}")
fi

# run_case index: builds and runs one verifier in its own directory and
# writes a one-line verdict to $work/<index>.result.
run_case() {
  local i="$1" name expect defs memlim dir rc=0 limit opt
  IFS='|' read -r name expect defs memlim <<<"${cases[$i]}"
  dir="$work/$i"
  mkdir -p "$dir"
  cp "$model" "$dir/"
  cd "$dir"
  # shellcheck disable=SC2086 # defs is a list of -D flags
  if ! spin -a $defs exactlyonce.pml >spin.log 2>&1; then
    echo "FAIL|$name|spin -a failed: $(tr '\n' ' ' <spin.log)" >"$work/$i.result"; return
  fi
  # shellcheck disable=SC2086
  # gcc spends longer optimising pan.c than a mutant's search takes
  opt=-Og
  [ "$expect" = fail ] && opt=-O0
  if ! gcc "$opt" -DSAFETY -DCOLLAPSE -DMEMLIM="${memlim:-2048}" $defs -o pan pan.c >gcc.log 2>&1; then
    echo "FAIL|$name|gcc failed: $(tr '\n' ' ' <gcc.log)" >"$work/$i.result"; return
  fi
  limit=0
  [ "$expect" = fail ] && limit="$mutant_timeout"
  local start end
  start=$(date +%s.%N)
  if [ "$limit" -gt 0 ]; then
    timeout "$limit" ./pan -m10000 -w24 >pan.out 2>&1 || rc=$?
  else
    ./pan -m10000 -w24 >pan.out 2>&1 || rc=$?
  fi
  end=$(date +%s.%N)
  local secs states errors what
  secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  states=$(awk '/states, stored/ { print $1; exit }' pan.out)
  errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' pan.out | head -1)
  what=$(grep -m1 -E 'assertion violated|invalid end state|acceptance cycle' pan.out | sed 's/^pan:[0-9]*: *//' || true)
  local incomplete=""
  if grep -q -E 'max search depth too small|reached -DMEMLIM bound|out of memory' pan.out; then
    incomplete="search incomplete: $(grep -m1 -E 'max search depth too small|reached -DMEMLIM bound|out of memory' pan.out)"
  fi
  if [ "$rc" = 124 ]; then incomplete="no violation within ${limit}s"; fi
  if [ "$expect" = pass ]; then
    if [ -z "$incomplete" ] && [ "$errors" = 0 ]; then
      echo "ok|$name|passes: ${states} states, ${secs}s" >"$work/$i.result"
    else
      echo "FAIL|$name|expected no violation: ${incomplete:-$what} (${states:-?} states, ${secs}s)" >"$work/$i.result"
      spin -t $defs exactlyonce.pml 2>&1 | grep -E '@|text of failed assertion' | sed 's/^ *@/  /' >"$work/$i.trail" || true
    fi
  else
    if [ -n "${errors:-}" ] && [ "$errors" -ge 1 ]; then
      echo "ok|$name|caught: ${what} (${states} states, ${secs}s)" >"$work/$i.result"
      # shellcheck disable=SC2086
      spin -t $defs exactlyonce.pml 2>&1 | grep -E '@|text of failed assertion' | sed 's/^ *@/  /' >"$work/$i.trail" || true
    else
      echo "FAIL|$name|mutant passed: ${incomplete:-spin found no violation} (${states:-?} states, ${secs}s)" >"$work/$i.result"
    fi
  fi
}

total_start=$(date +%s)
running=0
for i in "${!cases[@]}"; do
  run_case "$i" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs_max" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

failed=0
for i in "${!cases[@]}"; do
  IFS='|' read -r verdict name detail <"$work/$i.result"
  printf '%-4s %-46s %s\n' "$verdict" "$name" "$detail"
  if [ "$verdict" != ok ]; then
    failed=1
    [ -s "$work/$i.trail" ] && sed 's/^/      /' "$work/$i.trail"
  elif [ "$verbose" = 1 ] && [ -s "$work/$i.trail" ]; then
    sed 's/^/      /' "$work/$i.trail"
  fi
done
echo "model check: $(( $(date +%s) - total_start ))s on $jobs_max cores"
if [ "$failed" != 0 ]; then
  echo "model check FAILED" >&2
  exit 1
fi
echo "model check ok"
