#!/usr/bin/env bash
# The guest benchmark of issue 14: one command, one run, servers interleaved (every configuration once per
# round, rounds repeated), medians with min-max, host CPU seconds of the serving processes per workload, and a
# Markdown table of ratios (plus a PNG chart drawn by the device bench program).
#   virtfs-{none,mmap,loose}    VirtFs (vhost-user-9p + helper), 9p cache=none|mmap|loose, msize 512000
#   builtin-{none,mmap,loose}   QEMU 11.1's own virtio-9p, same mount options
#   virtiofsd-{never,auto}      virtiofsd 1.13 --cache=never|auto (virtiofs)
#   builtinintx-{none,mmap,loose}  (not in the default set) the built-in server on a legacy INTx interrupt
#                               (virtio-9p-pci vectors=0), the interrupt QEMU's vhost-user test device gives VirtFs
#   rootless-{none,mmap,loose}  (not in the default set) VirtFs without the helper (vhost-user-9p --shared-dir as the
#                               share's owner, mapped-xattr): what the privilege split costs
#   floor-tmpfs                 (not in the default set) the same workloads on a tmpfs inside the guest: no file
#                               server at all. The guest's own time (TCG, the compiler, tar, git), which no server
#                               can take off: the built-in server's time over it is the most any server could gain
# Workloads (tools/bench/guest-bench.sh): fio 1 MiB sequential write and read (caches dropped between), 4 KiB
# random reads (psync; libaio iodepth 16 x 4 jobs), create/stat/rename/unlink of --files files in 100 dirs,
# untar of a 30+ MiB tree and find/du over it, a developer's loop on zlib's git checkout.
# Inputs are built once into $VIRTFS_BENCH_CACHE (default /var/cache/virtfs-perf): the tree is tarred from the
# lab chroot's /usr/share/{perl,doc,zoneinfo} (read only); zlib's Debian source comes from `apt-get source`
# with a private apt state in that directory.
#
# Usage: tools/bench/run.sh [--rounds N] [--size 256M] [--files 10000] [--time 15] [--quick]
#                           [--configs "virtfs-none builtin-none ..."] [--groups "fio metadata tree devloop"]
#                           [--out DIR] [--no-build] [--no-warmup] [--latency]
#   --groups  only these workload groups (default all four): fio = the four fio rows, metadata = create/stat/
#             rename/unlink, tree = untar/find-du/rm-tree, devloop = the developer's loop
#   --quick   --size 32M --files 1000 --time 5 (a run of minutes, not an hour); --rounds stays as given
#   --no-warmup  skip the uncounted first boot (it warms the host's page cache for the guest's root filesystem)
#   --out     keep results there (default: a temp dir, printed); the report is OUT/report.md, the chart OUT/chart.png
#   --latency also time every 9p request the guest's client sends to the share, per request type (tracefs histograms), next to the
#             backend's own wait + service time per type: where a request's time goes. The tracing slows the
#             guest a little, alike for every server: compare --latency runs only with each other
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS="$(cd "$HERE/.." && pwd)"
REPO="$(cd "$TOOLS/.." && pwd)"
ROUNDS=3 SIZE=256M FILES=10000 TIME=15 OUT="" BUILD=1 WARMUP=1 LATENCY=0 WGROUPS="fio metadata tree devloop"
CONFIGS="virtfs-none builtin-none virtiofsd-never virtfs-mmap builtin-mmap virtiofsd-auto virtfs-loose builtin-loose"
while (( $# )); do
    case "$1" in
        --rounds) ROUNDS="$2"; shift 2 ;;
        --size) SIZE="$2"; shift 2 ;;
        --files) FILES="$2"; shift 2 ;;
        --time) TIME="$2"; shift 2 ;;
        --quick) SIZE=32M FILES=1000 TIME=5; shift ;;
        --configs) CONFIGS="$2"; shift 2 ;;
        --groups) WGROUPS="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --no-warmup) WARMUP=0; shift ;;
        --latency) LATENCY=1; shift ;;
        -h|--help) sed -n '2,27p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "bench: unknown option $1" >&2; exit 2 ;;
    esac
done
[[ "$SIZE" =~ ^[0-9]+[KMG]$ ]] || { echo "bench: --size like 256M" >&2; exit 2; }
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ && "$FILES" =~ ^[0-9]+$ && "$TIME" =~ ^[0-9]+$ ]] || { echo "bench: bad number" >&2; exit 2; }
(( FILES >= 100 )) || { echo "bench: --files at least 100" >&2; exit 2; }
for g in $WGROUPS; do
    [[ " fio metadata tree devloop " == *" $g "* ]] || { echo "bench: unknown workload group $g (fio metadata tree devloop)" >&2; exit 2; }
done
INPUTS="${VIRTFS_BENCH_CACHE:-/var/cache/virtfs-perf}"
LAB="${VIRTFS_CACHE:-/var/cache/virtfs}/trixie"
[[ -d "$LAB/usr/share/perl" ]] || { echo "bench: NEEDS: the lab (tools/lab.sh)" >&2; exit 3; }
if [[ -z "$OUT" ]]; then OUT="$(mktemp -d /tmp/virtfs-bench.XXXXXX)"; fi
mkdir -p "$OUT"; OUT="$(cd "$OUT" && pwd)"
echo "bench: results in $OUT" >&2

# --- inputs, built once ---
mkdir -p "$INPUTS"
if [[ ! -s "$INPUTS/tree.tar" ]]; then
    tar -C "$LAB/usr/share" -cf "$INPUTS/tree.tar.tmp" perl doc zoneinfo && mv "$INPUTS/tree.tar.tmp" "$INPUTS/tree.tar"
fi
if [[ ! -s "$INPUTS/zlib-git.tar" ]]; then
    A="$INPUTS/apt"; mkdir -p "$A/lists/partial" "$A/archives/partial" "$INPUTS/src"
    echo "deb-src http://deb.debian.org/debian bookworm main" >"$A/sources.list"
    O=(-o "Dir::Etc::SourceList=$A/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$A/lists" -o "Dir::Cache=$A")
    ls "$INPUTS"/src/zlib_*.orig.tar.* >/dev/null 2>&1 || {
        timeout 600 apt-get "${O[@]}" update -q >&2 && (cd "$INPUTS/src" && timeout 600 apt-get "${O[@]}" source --download-only zlib >&2); } \
        || { echo "bench: NEEDS: zlib's source (apt-get source zlib from deb.debian.org)" >&2; exit 3; }
    W="$(mktemp -d)"; mkdir -p "$W/zlib"
    tar -C "$W/zlib" --strip-components=1 -xf "$(ls "$INPUTS"/src/zlib_*.orig.tar.* | head -n1)"
    ( cd "$W/zlib" && git init -q && git add -A && git -c user.name=bench -c user.email=bench@localhost commit -qm import )
    tar -C "$W" -cf "$INPUTS/zlib-git.tar" zlib; rm -rf "$W"
fi
(( BUILD )) && "$TOOLS/build.sh" >&2
NB=(--no-build)

# --- the runs ---
# run_one CONFIG DIR: one guest boot of CONFIG running the workloads; results and CPU seconds into DIR.
run_one() {
    local config=$1 dir=$2 server cache export_dir opts env on=share
    server="${config%%-*}" cache="${config#*-}"
    rm -rf "$dir"; mkdir -p "$dir"
    export_dir="$OUT/share.$config"; rm -rf "$export_dir"; mkdir -p "$export_dir"; chmod 0755 "$export_dir"
    opts=() env=()
    case "$server" in
        virtfs|builtin) opts=(--mount-opts "access=user,msize=512000,cache=$cache") ;;
        # The built-in server with the interrupt VirtFs gets (INTx, no MSI-X): the transport's control.
        builtinintx) server=builtin; env=(VIRTFS_BUILTIN_VECTORS=0)
            opts=(--mount-opts "access=user,msize=512000,cache=$cache") ;;
        virtiofsd) env=(VIRTFS_VIRTIOFSD_CACHE="$cache") ;;
        # It serves the share as the share's owner: an unprivileged one (the lab's backend user).
        rootless) server=virtfs-rootless; chown virtfs:virtfs "$export_dir"
            opts=(--mount-opts "access=user,msize=512000,cache=$cache") ;;
        # The share is still mounted (the phase marks go there), but the workloads run on the guest's tmpfs.
        floor) server=builtin on=tmpfs; opts=(--mount-opts "access=user,msize=512000,cache=none") ;;
        *) echo "bench: unknown configuration $config" >&2; exit 2 ;;
    esac
    env "${env[@]}" "$TOOLS/vm.sh" --server "$server" --share "$export_dir" "${NB[@]}" "${opts[@]}" --timeout 3600 \
        --log-dir "$dir/logs" --cpu-phases "$dir/cpu.txt" --file "$HERE/guest-bench.sh" \
        --file "$INPUTS/tree.tar" --file "$INPUTS/zlib-git.tar" \
        --run "BENCH_ON=$on BENCH_LATENCY=$LATENCY BENCH_GROUPS='$WGROUPS' BENCH_SIZE=$SIZE BENCH_FILES=$FILES BENCH_TIME=$TIME BENCH_TREE=\$VIRTFS_JOBDIR/tree.tar BENCH_REPO=\$VIRTFS_JOBDIR/zlib-git.tar sh \$VIRTFS_JOBDIR/guest-bench.sh" \
        >"$dir/out.txt" 2>&1 || echo "bench: $config in $dir failed (see $dir/out.txt)" >&2
    tr -d '\r' <"$dir/out.txt" | grep '^BENCH ' | grep -v -e FAILED -e SKIPPED | awk '{ print $2, $3, $4 }' >"$dir/results.txt" || true
    # --latency: the guest's time per request type, and (VirtFs) the backend's own from its exit statistics,
    # "Twalk n=47952 wait=0.036ms service=0.117ms": both as "type count microseconds" (a sum over the run).
    # The guest prints them per workload ("LAT9P create Twalk 1000 239000"): kept so in phase-latency.txt, summed
    # over the workloads in latency.txt.
    tr -d '\r' <"$dir/out.txt" | awk '$1 == "LAT9P" { print $2, $3, $4, $5 }' >"$dir/phase-latency.txt" || true
    awk '{ n[$2] += $3; us[$2] += $4 } END { for (t in n) print t, n[t], us[t] }' "$dir/phase-latency.txt" >"$dir/latency.txt"
    grep -h '9P requests:' "$dir/logs/backend.log" 2>/dev/null | tail -n1 | tr ';' '\n' |
        sed -nE 's/.*(T[a-z]+) n=([0-9]+) wait=([0-9.]+)ms service=([0-9.]+)ms.*/\1 \2 \3 \4/p' |
        awk '{ printf "%s %s %.0f\n", $1, $2, $2 * ($3 + $4) * 1000 }' >"$dir/backend-latency.txt" || true
    # CPU seconds per workload: ticks between the phase's start and the next phase line ("time phase ticks"),
    # minus the idle baseline: the rate the serving processes burn while the guest sleeps (the 5 s "baseline"
    # phase the guest starts with) times the workload's duration, so QEMU's main loop ticking for its own sake
    # is not counted as serving. Without the raw numbers in cpu-raw-seconds.txt.
    if [[ -s "$dir/cpu.txt" ]]; then
        awk -v hz="$(getconf CLK_TCK)" 'NR > 1 { d = $1 - t0; c = ($3 - ticks) / hz
                if (prev == "baseline" && d > 0) rate = c / d
                else if (prev != "idle") { n++; w[n] = prev; cpu[n] = c; dur[n] = d } }
            { prev = $2; ticks = $3; t0 = $1 }
            END { for (i = 1; i <= n; i++) { v = cpu[i] - rate * dur[i]; printf "%s %.2f\n", w[i], (v > 0 ? v : 0)
                                             printf "%s %.2f\n", w[i], cpu[i] > "/dev/stderr" } }' \
            "$dir/cpu.txt" >"$dir/cpu-seconds.txt" 2>"$dir/cpu-raw-seconds.txt"
    fi
    rm -rf "$export_dir"
}

# A warm-up boot, not counted: the first guest after a build or an idle spell reads its root filesystem (fio,
# perl, tar, the compiler) and our binaries from the host's disk, and measured several times slower than the
# same configuration in later rounds (the first configuration of the first round of 2026-12-05).
if (( WARMUP )); then
    set -- $CONFIGS
    echo "bench: warm-up ($1, not counted)" >&2
    run_one "$1" "$OUT/warmup"
fi
# Every configuration once per round; each round starts one configuration further along the list, so no
# configuration always runs first or always follows the same one.
read -r -a LIST <<<"$CONFIGS"
for (( round = 1; round <= ROUNDS; round++ )); do
    for (( i = 0; i < ${#LIST[@]}; i++ )); do
        config="${LIST[(i + round - 1) % ${#LIST[@]}]}"
        echo "bench: round $round/$ROUNDS $config" >&2
        run_one "$config" "$OUT/$config/round$round"
    done
done

# --- the report ---
"$HERE/report.sh" "$OUT" "$CONFIGS" >"$OUT/report.md"
cat "$OUT/report.md"
CHART="$REPO/artifacts/bench/bin/VirtFs.DeviceBench/release_linux-x64/VirtFs.DeviceBench"
if [[ -x "$CHART" && -s "$OUT/ratios.tsv" ]]; then
    "$CHART" chart --in "$OUT/ratios.tsv" --out "$OUT/chart.png" && echo "bench: chart $OUT/chart.png" >&2
fi
