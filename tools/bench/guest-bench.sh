#!/bin/sh
# Runs in the guest (tools/vm.sh --run) on the mounted share at /mnt. Prints one line per result:
#   BENCH <name> <value> <unit>
# Throughput with fio (psync, one job, the same parameters for every server), metadata with perl loops
# (one process, so process start-up under TCG does not drown the filesystem's cost).
set -u
D=/mnt/bench.$$
SIZE=${BENCH_SIZE:-128M}
mkdir -p "$D" || exit 1
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }

fio_bw() { # name rw bs field(7=read bw KiB/s, 48=write bw KiB/s in terse v3)
    name=$1 rw=$2 bs=$3 field=$4
    drop
    out=$(fio --name="$name" --directory="$D" --filename=fio.dat --rw="$rw" --bs="$bs" --size="$SIZE" \
        --ioengine=psync --numjobs=1 --end_fsync=1 --minimal --terse-version=3 2>/dev/null) || { echo "BENCH $name FAILED"; return; }
    echo "$out" | awk -F';' -v n="$name" -v f="$field" '{ printf "BENCH %s %.1f MB/s\n", n, $f / 1024 * 1.024 }'
}
fio_iops() { # name rw bs field(8=read iops)
    name=$1 rw=$2 bs=$3 field=$4
    drop
    out=$(fio --name="$name" --directory="$D" --filename=fio.dat --rw="$rw" --bs="$bs" --size="$SIZE" \
        --ioengine=psync --numjobs=1 --runtime=15 --time_based=0 --minimal --terse-version=3 2>/dev/null) || { echo "BENCH $name FAILED"; return; }
    echo "$out" | awk -F';' -v n="$name" -v f="$field" '{ printf "BENCH %s %.0f IOPS\n", n, $f }'
}

fio_bw seq-write write 1M 48
fio_bw seq-read read 1M 7
fio_iops rand-read-4k randread 4k 8
rm -f "$D/fio.dat"

perl -MTime::HiRes=time -e '
    my $d = shift; my $n = 2000;
    my $t = time; for my $i (1..$n) { open(my $f, ">", "$d/f$i") or die "create: $!"; close $f }
    printf "BENCH create %.0f ops/s\n", $n / (time - $t);
    $t = time; for my $i (1..$n) { my @s = lstat("$d/f$i") or die "stat: $!" }
    printf "BENCH stat %.0f ops/s\n", $n / (time - $t);
    $t = time; for my $i (1..$n) { rename("$d/f$i", "$d/g$i") or die "rename: $!" }
    printf "BENCH rename %.0f ops/s\n", $n / (time - $t);
    $t = time; for my $i (1..$n) { unlink("$d/g$i") or die "unlink: $!" }
    printf "BENCH unlink %.0f ops/s\n", $n / (time - $t);
' "$D" || echo "BENCH metadata FAILED"
rmdir "$D"
