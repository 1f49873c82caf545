#!/usr/bin/env bash
# Coverage-guided fuzzing of VirtFs's parsers (issue 13, docs/fuzzing.md): AFL++ drives the targets of
# tools/fuzz (virtfs-fuzz) through SharpFuzz's instrumentation.
#
#   tools/fuzz.sh TARGET SECONDS [options]     TARGET: 9p | ring | vhost-user | proxy | all (each in turn)
#
#   1. tools/lab-fuzz.sh provisions AFL++ once into $VIRTFS_CACHE/fuzz (a bookworm chroot; cached by stamp);
#   2. builds tools/fuzz (Release) and instruments the assemblies under test with SharpFuzz (`dotnet sharpfuzz`,
#      the repo's tool manifest): VirtFs.VhostUser, vhost-user-9p, VirtFs.ProxyFs, virtfs-proxy-helper;
#   3. runs the chroot's afl-fuzz through the chroot's own loader and libraries (nothing of AFL++ on the host)
#      against `dotnet virtfs-fuzz.dll TARGET` (the host's .NET), seeded from tools/fuzz/corpus/TARGET, for SECONDS;
#   4. prints one line per target: `PASS: fuzz[T] ...` with executions and exec/s when afl-fuzz saved no crash,
#      else `FAIL: fuzz[T] ...` and, for each saved crash or hang, its replay (exception and input in hex).
#
# Options:
#   --out DIR       keep afl-fuzz's output in DIR/TARGET (default: a temporary directory, removed at the end)
#   --resume        continue the campaign in --out DIR (afl-fuzz -i -) instead of starting from the seeds
#   --no-build      reuse the instrumented build of a previous run ($VIRTFS_FUZZ_BUILD)
#   --nice N        run afl-fuzz and the target at nice N (default 0; long campaigns: 19)
# Env: VIRTFS_CACHE (default /var/cache/virtfs), VIRTFS_FUZZ_BUILD (instrumented build, default
#      /tmp/virtfs-fuzz-build), VIRTFS_FUZZ_SCRATCH (the 9p target's scratch exports, default a temporary directory removed at the end).
# Exit: 0 no finding; 1 a finding (or afl-fuzz failed); 2 usage; 3 cannot run here (reason after "NEEDS:").
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${VIRTFS_CACHE:-/var/cache/virtfs}"
CHROOT="$CACHE/fuzz"
BUILD="${VIRTFS_FUZZ_BUILD:-/tmp/virtfs-fuzz-build}"
TARGETS=(9p ring vhost-user proxy)

log() { printf 'fuzz: %s\n' "$*" >&2; }
need() { printf 'fuzz: NEEDS: %s\n' "$*"; exit 3; }
usage() { sed -n '2,24p' "${BASH_SOURCE[0]}"; exit 2; }

(( $# >= 2 )) || usage
WHICH=$1 SECONDS_EACH=$2; shift 2
[[ "$SECONDS_EACH" =~ ^[0-9]+$ ]] && (( SECONDS_EACH > 0 )) || usage
OUT="" RESUME=0 BUILD_IT=1 NICE=0
while (( $# )); do
    case "$1" in
        --out) OUT="$2"; shift 2 ;;
        --resume) RESUME=1; shift ;;
        --no-build) BUILD_IT=0; shift ;;
        --nice) NICE="$2"; shift 2 ;;
        -h|--help) usage ;;
        *) echo "fuzz: unknown option $1" >&2; exit 2 ;;
    esac
done
case "$WHICH" in
    all) RUN=("${TARGETS[@]}") ;;
    9p|ring|vhost-user|proxy) RUN=("$WHICH") ;;
    *) usage ;;
esac
(( RESUME )) && [[ -z "$OUT" ]] && { echo "fuzz: --resume needs --out DIR" >&2; exit 2; }

command -v dotnet >/dev/null || need "the .NET 10 SDK (dotnet) on PATH"
"$REPO/tools/lab-fuzz.sh"; rc=$?
(( rc == 0 )) || { (( rc == 3 )) && need "AFL++ (tools/lab-fuzz.sh could not provision it; see above)"; echo "FAIL: fuzz (tools/lab-fuzz.sh exit $rc)"; exit 1; }

WORK="$(mktemp -d /tmp/virtfs-fuzz.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# --- build and instrument ---
PLAIN="$BUILD/plain" INSTR="$BUILD/instrumented"
if (( BUILD_IT )) || [[ ! -f "$INSTR/virtfs-fuzz.dll" ]]; then
    log "building tools/fuzz (Release) and instrumenting with SharpFuzz"
    rm -rf "$BUILD"
    mkdir -p "$BUILD"
    (cd "$REPO" && timeout 600 dotnet tool restore >"$WORK/tool.log" 2>&1) \
        || { cat "$WORK/tool.log"; need "the SharpFuzz.CommandLine tool from NuGet (dotnet tool restore)"; }
    timeout 900 dotnet build "$REPO/tools/fuzz/VirtFs.Fuzz.csproj" -c Release -nologo -p:ArtifactsPath="$BUILD/art" \
        >"$WORK/build.log" 2>&1 || { grep -E 'error' "$WORK/build.log" | sort -u | head -n 20; echo "FAIL: fuzz (build of tools/fuzz)"; exit 1; }
    cp -r "$BUILD/art/bin/VirtFs.Fuzz/release_linux-x64" "$PLAIN"
    cp -r "$PLAIN" "$INSTR"
    for asm in VirtFs.VhostUser.dll vhost-user-9p.dll VirtFs.ProxyFs.dll virtfs-proxy-helper.dll; do
        (cd "$REPO" && timeout 300 dotnet sharpfuzz "$INSTR/$asm") >"$WORK/instrument.log" 2>&1 \
            || { cat "$WORK/instrument.log"; echo "FAIL: fuzz (sharpfuzz $asm)"; exit 1; }
    done
fi

# The chroot's afl-fuzz, run with the chroot's loader and libraries: the host's packages are never involved, and
# the target it forks is the host's dotnet with our build (afl-fuzz only needs the target's path and a shm map).
AFL_LIBS="$CHROOT/lib/x86_64-linux-gnu:$CHROOT/usr/lib/x86_64-linux-gnu"
# SharpFuzz targets carry no compile-time marker (skip the binary check); cores go wherever the host sends them
# (containers cannot change core_pattern); a shared 2-core machine: no CPU pinning, no UI.
export AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 \
       AFL_NO_AFFINITY=1 AFL_FAST_CAL=1 AFL_SHUFFLE_QUEUE=1
export VIRTFS_FUZZ_SCRATCH="${VIRTFS_FUZZ_SCRATCH:-$WORK}"

max_len() { case "$1" in 9p) echo 16384 ;; ring) echo 65538 ;; vhost-user) echo 32768 ;; proxy) echo 196632 ;; esac; }

FAILED=0
for t in "${RUN[@]}"; do
    seeds="$REPO/tools/fuzz/corpus/$t"
    out="${OUT:+$OUT/$t}"; out="${out:-$WORK/out-$t}"
    mkdir -p "$(dirname "$out")"
    if (( RESUME )) && [[ -d "$out/default/queue" ]]; then input=(-i -); export AFL_AUTORESUME=1
    else rm -rf "$out"; input=(-i "$seeds"); unset AFL_AUTORESUME; fi
    [[ -d "$seeds" ]] && [[ -n "$(ls -A "$seeds")" ]] || { echo "FAIL: fuzz[$t] (no seeds in $seeds)"; FAILED=1; continue; }
    # Inputs that once failed, replayed in order in one process (some findings need what the input before did).
    if [[ -d "$REPO/tools/fuzz/regressions/$t" ]]; then
        if timeout 300 dotnet "$PLAIN/virtfs-fuzz.dll" "$t" --replay "$REPO/tools/fuzz/regressions/$t" >"$WORK/regress.log" 2>&1; then
            echo "PASS: fuzz[$t] regressions ($(tail -n1 "$WORK/regress.log"))"
        else
            echo "FAIL: fuzz[$t] regressions: $(grep -m1 'CRASH' "$WORK/regress.log" | cut -c1-400)"; FAILED=1
        fi
    fi
    log "$t: afl-fuzz for ${SECONDS_EACH}s (output $out)"
    # -t: the first input also pays for .NET start-up and JIT; -G: inputs beyond what the target reads are waste.
    export VIRTFS_FUZZ_CRASH_LOG="$out.exceptions"
    for attempt in 1 2; do
        timeout --kill-after=30 $((SECONDS_EACH + 120)) nice -n "$NICE" \
            "$CHROOT/lib64/ld-linux-x86-64.so.2" --library-path "$AFL_LIBS" "$CHROOT/usr/bin/afl-fuzz" \
            "${input[@]}" -o "$out" -V "$SECONDS_EACH" -t 10000 -m none -G "$(max_len "$t")" \
            -- dotnet "$INSTR/virtfs-fuzz.dll" "$t" >"$WORK/afl-$t.log" 2>&1
        rc=$?
        # Seen once with four afl-fuzz starting at the same moment on a loaded machine: the dry run saw an empty
        # coverage map ("No instrumentation detected") and afl-fuzz gave up; the same build ran at once alone.
        grep -q 'No instrumentation detected' "$WORK/afl-$t.log" && (( attempt == 1 )) || break
        log "$t: afl-fuzz saw no coverage in its dry run; starting it once more"
        rm -rf "$out"
    done
    stats="$out/default/fuzzer_stats"
    if [[ ! -f "$stats" ]]; then
        echo "FAIL: fuzz[$t] (afl-fuzz exit $rc, no statistics)"; tail -n 25 "$WORK/afl-$t.log" | sed 's/\x1b\[[0-9;]*[A-Za-z]//g'
        FAILED=1; continue
    fi
    stat_of() { sed -n "s/^$1 *: *//p" "$stats" | head -n1; }
    execs=$(stat_of execs_done) eps=$(stat_of execs_per_sec) corpus=$(stat_of corpus_count) cvg=$(stat_of bitmap_cvg)
    crashes=$(find "$out/default/crashes" -type f -name 'id:*' 2>/dev/null | wc -l)
    # A hang under a loaded machine is not a finding by itself: it counts when its replay alone exceeds 30 s.
    hangs=0
    while IFS= read -r h; do
        [[ -n "$h" ]] || continue
        if ! timeout 30 dotnet "$PLAIN/virtfs-fuzz.dll" "$t" --replay "$h" >"$WORK/hang.log" 2>&1; then
            hangs=$((hangs + 1)); echo "fuzz[$t]: hang $h:"; head -c 2000 "$WORK/hang.log"; echo
        fi
    done < <(find "$out/default/hangs" -type f -name 'id:*' 2>/dev/null)
    summary="$execs executions, $eps exec/s, corpus $corpus, map $cvg"
    echo "fuzz[$t]: $summary"
    if (( crashes == 0 && hangs == 0 )); then
        echo "PASS: fuzz[$t] ($summary, no crash)"
    else
        FAILED=1
        (( hangs > 0 )) && echo "FAIL: fuzz[$t] ($hangs input(s) that hang even when replayed alone; $summary)"
        # One FAIL line per crash (up to 5) carrying the exception and the input, so tools/test.sh shows both.
        for c in $(find "$out/default/crashes" -type f -name 'id:*' | sort | head -n 5); do
            timeout 60 dotnet "$PLAIN/virtfs-fuzz.dll" "$t" --replay "$c" >"$WORK/replay.log" 2>&1
            why="$(grep -m1 -o 'CRASH .*' "$WORK/replay.log" | sed 's/^CRASH [^:]*: //' | cut -c1-300)"
            if [[ -z "$why" ]]; then
                why="did not reproduce when replayed alone; exceptions the target logged under afl-fuzz: $(grep -m3 -E '^[A-Za-z.]+(Exception|Error)' "$VIRTFS_FUZZ_CRASH_LOG" 2>/dev/null | sort | uniq -c | tr -s ' \n' ' ' | cut -c1-400)"
            fi
            echo "FAIL: fuzz[$t] crash $(basename "$c"): $why; input ($(stat -c %s "$c") bytes, hex): $(od -An -v -tx1 "$c" | tr -d ' \n' | cut -c1-1024)"
            cat "$WORK/replay.log" | head -c 6000; echo
        done
        [[ -f "$VIRTFS_FUZZ_CRASH_LOG" ]] && { echo "--- exceptions logged under afl-fuzz ($VIRTFS_FUZZ_CRASH_LOG):"; head -c 8000 "$VIRTFS_FUZZ_CRASH_LOG"; echo; }
    fi
done
exit $FAILED
