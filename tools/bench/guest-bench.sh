#!/bin/sh
# Runs in the guest (tools/vm.sh --run) on the mounted share at /mnt. Prints one line per result:
#   BENCH <name> <value> <unit>
# and, around each workload, writes its name into /mnt/.bench-phase so the host can split the serving
# processes' CPU time by workload (tools/vm.sh --cpu-phases). Parameters (environment):
#   BENCH_SIZE   fio file size (default 256M)        BENCH_FILES  metadata files, in 100 dirs (default 10000)
#   BENCH_TIME   seconds per random-read run (15)    BENCH_TREE   tarball to untar (from $VIRTFS_JOBDIR)
#   BENCH_REPO   tarball of a git checkout for the developer's loop
#   BENCH_GROUPS which groups to run (default all): fio metadata tree devloop
#   BENCH_ON=tmpfs   run them on a tmpfs in the guest, not on the share: no file server at all, the floor
#   BENCH_LATENCY=1  also time every 9p request the guest's client sends to the share (tracefs: the 9p_client_req
#                    and 9p_client_res events, matched by tag in a histogram) and print, as each workload (phase)
#                    ends, one line per type: LAT9P <workload> <type> <count> <sum of microseconds>. The tracing
#                    itself slows every request a little, the same for every server: compare such runs with each
#                    other, not with plain ones.
set -u
BENCH_WANT=" ${BENCH_GROUPS:-fio metadata tree devloop} "
want() { case "$BENCH_WANT" in *" $1 "*) return 0 ;; esac; return 1; }
D=/mnt/bench
if [ "${BENCH_ON:-share}" = tmpfs ]; then
    mkdir -p /run/bench-floor && mount -t tmpfs -o size=700m tmpfs /run/bench-floor || exit 1
    D=/run/bench-floor/bench
fi
SIZE=${BENCH_SIZE:-256M} FILES=${BENCH_FILES:-10000} TIME=${BENCH_TIME:-15}
rm -rf "$D"; mkdir -p "$D" || exit 1

# Guest-side latency per 9p request type (BENCH_LATENCY=1): from the request's trace event to its reply's, in
# the guest's clock. A synthetic event carries each latency to a histogram keyed by the request's type.
# Only the share's client is traced: the guest's root filesystem is 9p too (QEMU's built-in server, in every
# configuration), and its requests would mix into the counts and, reusing the same tag numbers, into the
# timings. The share's client is the one that sends the Tstatfs (type 8) of a `stat -f` on /mnt.
TR=/sys/kernel/tracing
lat_start() {
    [ "${BENCH_LATENCY:-0}" = 1 ] || return 0
    mountpoint -q "$TR" || mount -t tracefs none "$TR" 2>/dev/null
    req=$TR/events/9p/9p_client_req
    clnt=$( { echo 'hist:keys=clnt:vals=hitcount if type == 8' > "$req/trigger" && stat -f /mnt >/dev/null &&
              awk '/^\{ clnt:/ { print $3 }' "$req/hist"
              echo '!hist:keys=clnt:vals=hitcount if type == 8' > "$req/trigger"; } 2>/dev/null )
    case "$clnt" in
        ''|*[!0-9]*) echo "BENCH latency SKIPPED (no 9p trace events or histogram triggers in this guest kernel, or no single client for /mnt)"
            BENCH_LATENCY=0; return 0 ;;
    esac
    { echo 'p9lat u64 lat; u8 type' >> "$TR/synthetic_events" &&
      echo "hist:keys=tag:ts0=common_timestamp.usecs:t0=type if clnt == $clnt" > "$req/trigger" &&
      echo "hist:keys=tag:lat=common_timestamp.usecs-\$ts0:onmatch(9p.9p_client_req).trace(p9lat,\$lat,\$t0) if clnt == $clnt" \
        > "$TR/events/9p/9p_client_res/trigger" &&
      echo 'hist:keys=type:vals=hitcount,lat:size=256' > "$TR/events/synthetic/p9lat/trigger"; } 2>/dev/null \
        || { echo "BENCH latency SKIPPED (no 9p trace events or histogram triggers in this guest kernel)"; BENCH_LATENCY=0; }
}
# lat_mark NAME: prints the requests since the last mark as "LAT9P <phase> <type> <count> <sum of microseconds>"
# under the phase that was running (the one the previous mark named), then empties the histogram for the next.
lat_phase=start
lat_mark() {
    [ "${BENCH_LATENCY:-0}" = 1 ] || return 0
    # Lines like "{ type:        110 } hitcount:      49915  lat:   21444857"; names from include/net/9p/9p.h.
    awk -v p="$lat_phase" 'BEGIN { k = split("8 Tstatfs 12 Tlopen 14 Tlcreate 16 Tsymlink 18 Tmknod 20 Trename 22 Treadlink 24 Tgetattr " \
                       "26 Tsetattr 30 Txattrwalk 32 Txattrcreate 40 Treaddir 50 Tfsync 52 Tlock 54 Tgetlock 70 Tlink " \
                       "72 Tmkdir 74 Trenameat 76 Tunlinkat 100 Tversion 104 Tattach 108 Tflush 110 Twalk 116 Tread " \
                       "118 Twrite 120 Tclunk 122 Tremove", a, " ")
                 for (i = 1; i < k; i += 2) name[a[i]] = a[i + 1] }
         /^\{ type:/ { t = $3; n = name[t] ? name[t] : "T" t; printf "LAT9P %s %s %s %s\n", p, n, $6, $8 }' \
        "$TR/events/synthetic/p9lat/hist"
    echo 'hist:keys=type:vals=hitcount,lat:size=256:clear' >> "$TR/events/synthetic/p9lat/trigger"
    lat_phase=$1
}
lat_start
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
phase() { sync; lat_mark "$1"; echo "$1" > /mnt/.bench-phase; sync; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# The serving processes' CPU while the guest does nothing (their timers, QEMU's main loop): the host subtracts
# this rate from every workload's CPU seconds (run.sh).
phase baseline; sleep 5; phase idle

fio_run() { # name field scale unit fio-args...   (terse v3: 7 read KiB/s, 8 read IOPS, 48 write KiB/s)
    name=$1 field=$2 scale=$3 unit=$4; shift 4
    drop
    phase "$name"
    out=$(fio --name="$name" --directory="$D" --filename=fio.dat --size="$SIZE" --minimal --terse-version=3 "$@" 2>/dev/null) \
        || { echo "BENCH $name FAILED"; phase idle; return; }
    phase idle
    echo "$out" | awk -F';' -v n="$name" -v f="$field" -v s="$scale" -v u="$unit" \
        '{ v += $f } END { printf "BENCH %s %.1f %s\n", n, v * s, u }'
}
if want fio; then
fio_run seq-write 48 0.001024 MB/s --rw=write --bs=1M --ioengine=psync --end_fsync=1
fio_run seq-read 7 0.001024 MB/s --rw=read --bs=1M --ioengine=psync
fio_run rand-read-4k 8 1 IOPS --rw=randread --bs=4k --ioengine=psync --runtime="$TIME" --time_based
# 4 jobs on one file, 16 in flight each; group_reporting sums them into the first line.
fio_run rand-read-4k-aio16x4 8 1 IOPS --rw=randread --bs=4k --ioengine=libaio --iodepth=16 --direct=0 \
    --numjobs=4 --group_reporting --runtime="$TIME" --time_based
rm -f "$D/fio.dat"
fi

# Metadata: one perl process (process start-up under TCG would drown the filesystem's cost).
want metadata && for op in create stat rename unlink; do
    phase "$op"
    perl -MTime::HiRes=time -e '
        my ($d, $n, $op) = @ARGV; my $t = time;
        for my $i (0 .. $n - 1) {
            my $dir = "$d/d" . ($i % 100);
            if ($op eq "create") { mkdir $dir if $i < 100; open(my $f, ">", "$dir/f$i") or die "create: $!"; close $f }
            elsif ($op eq "stat") { my @s = lstat("$dir/f$i") or die "stat: $!" }
            elsif ($op eq "rename") { rename("$dir/f$i", "$dir/g$i") or die "rename: $!" }
            else { unlink("$dir/g$i") or die "unlink: $!"; rmdir $dir if $i >= $n - 100 }
        }
        printf "BENCH %s %.2f s\n", $op, time - $t;
    ' "$D" "$FILES" "$op" || echo "BENCH $op FAILED"
done
phase idle

if want tree && [ -n "${BENCH_TREE:-}" ] && [ -f "$BENCH_TREE" ]; then
    drop; phase untar; t=$(now)
    mkdir -p "$D/tree" && tar -xf "$BENCH_TREE" -C "$D/tree" && echo "BENCH untar $(elapsed "$t") s" || echo "BENCH untar FAILED"
    drop; phase find-du; t=$(now)
    { find "$D/tree" | wc -l >/dev/null && du -s "$D/tree" >/dev/null; } && echo "BENCH find-du $(elapsed "$t") s" || echo "BENCH find-du FAILED"
    phase rm-tree; t=$(now)
    rm -rf "$D/tree" && echo "BENCH rm-tree $(elapsed "$t") s" || echo "BENCH rm-tree FAILED"
    phase idle
fi

# A developer's loop on a C project (zlib's git checkout): copy it onto the share, git status, edit + diff,
# build steps where the guest has a compiler, git clean, remove. The lab's trixie chroot has no gcc/make: the
# configure/make steps are reported as skipped there.
if want devloop && [ -n "${BENCH_REPO:-}" ] && [ -f "$BENCH_REPO" ]; then
    drop; phase devloop; t=$(now)
    # Each step's time too (BENCH devloop-STEP), to see which one a slower run loses in.
    ok=1 s=$t laps=""
    lap() { laps="$laps $1:$(elapsed "$s")"; s=$(now); }
    mkdir -p "$D/src" && tar -xf "$BENCH_REPO" -C "$D/src" || ok=0
    lap copy
    cd "$D/src/zlib" 2>/dev/null || ok=0
    if [ $ok = 1 ]; then
        git status --porcelain >/dev/null || ok=0
        sed -i 's/deflate/Deflate/' README && git diff --stat >/dev/null && git checkout -- README || ok=0
        lap git
        if command -v cc >/dev/null && command -v make >/dev/null; then
            ./configure >/dev/null || ok=0
            lap configure
            make -j2 >/dev/null || ok=0
            lap make
        else
            echo "BENCH devloop-build SKIPPED (no cc/make in the guest)"
        fi
        git clean -fdxq && git status --porcelain >/dev/null || ok=0
        lap clean
        cd /mnt
    fi
    rm -rf "$D/src" || ok=0
    lap rm
    if [ $ok = 1 ]; then
        echo "BENCH devloop $(elapsed "$t") s"
        for l in $laps; do echo "BENCH devloop-${l%%:*} ${l#*:} s"; done
    else
        echo "BENCH devloop FAILED"
    fi
    phase idle
fi
rm -rf "$D" /mnt/.bench-phase
lat_mark end
