#!/usr/bin/perl
# Part of tools/guest/posix.sh (runs in the guest, from the job dir).
# lock-two-fds.pl FILE: one process locks [0,10) through one fd and [5,15) through a second fd of the same file
# (a process never conflicts with itself); children find [0,1) and [12,13) taken; after the parent closes
# the second fd (POSIX: any close drops the process's locks on the file) a child gets [0,1).
# Prints the five results.
use strict; use Fcntl; use Errno;
my $file = shift;
open(my $one, '+<', $file) or die "open: $!"; open(my $two, '+<', $file) or die "open: $!";
sub lk { my ($fh, $s, $l) = @_; my $fl = pack('s s x4 q q i x4', F_WRLCK, 0, $s, $l, 0);
    fcntl($fh, F_SETLK, $fl) ? "ok" : ((sort grep { $!{$_} } keys %!)[0] // "errno=" . ($!+0)) }
sub child { my ($s, $l) = @_; my $pid = open(my $p, '-|') // die "fork: $!";
    if (!$pid) { open(my $c, '+<', $file) or die "open: $!"; print lk($c, $s, $l); exit 0 }
    local $/; my $r = <$p>; close $p; $r }
my @r = (lk($one, 0, 10), lk($two, 5, 10), child(0, 1), child(12, 1));
close $two;
push @r, child(0, 1);
print "@r\n";
