#!/bin/sh
# Guest half of tools/bench/pool.sh: 4 processes stat different files at once (each stat is a walk and a
# getattr through the helper with cache=none), then 1 process alone; prints BENCH lines in ops/s.
set -u
D=/mnt/pm.$$
mkdir -p "$D"
perl -e 'my $d = shift; for my $p (0..3) { mkdir "$d/p$p"; for my $i (1..300) { open(my $f, ">", "$d/p$p/f$i") or die; close $f } }' "$D"
run() { # processes
    perl -MTime::HiRes=time -e '
        my ($d, $procs) = @ARGV; my $n = 300; my $rounds = 4;
        my $t = time;
        my @kids;
        for my $p (0 .. $procs - 1) {
            my $pid = fork(); die "fork: $!" unless defined $pid;
            if ($pid == 0) { for (1..$rounds) { for my $i (1..$n) { lstat("$d/p$p/f$i") or die "stat: $!" } } exit 0 }
            push @kids, $pid;
        }
        waitpid($_, 0) for @kids;
        printf "BENCH stat-x%d %.0f ops/s\n", $procs, $procs * $n * $rounds / (time - $t);
    ' "$D" "$1"
}
run 1
run 4
rm -rf "$D"
