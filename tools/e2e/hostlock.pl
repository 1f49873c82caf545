#!/usr/bin/perl
# hostlock.pl FILE: takes a classic POSIX write lock on the whole of FILE (struct flock, x86_64 layout), prints
# "locked" and holds it for an hour (tools/e2e/posix.sh kills it when the guest is done). A server with real locks
# makes the guest's F_SETLK on that file fail with EAGAIN (docs/semantics.md).
use strict; use Fcntl;
open(my $f, "+<", $ARGV[0]) or die "$!";
my $l = pack("s s x4 q q i x4", F_WRLCK, 0, 0, 0, 0);
fcntl($f, F_SETLK, $l) or die "lock: $!";
print "locked\n"; $| = 1;
sleep 3600;
