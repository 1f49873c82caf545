#!/usr/bin/perl
# Part of tools/guest/posix.sh (runs in the guest, from the job dir).
# lock.pl FILE CMD TYPE START LEN [HOLD]: POSIX byte-range locks with fcntl (struct flock, x86_64 layout).
#   CMD setlk|setlkw|getlk; TYPE r|w|u; prints ok / the errno name / "getlk TYPE PID";
#   with HOLD: after success prints "ok", keeps the lock HOLD seconds.
use strict; use Fcntl; use Errno; use IO::Handle; STDOUT->autoflush(1);
my ($file, $cmd, $type, $start, $len, $hold) = @ARGV;
my %t = (r => F_RDLCK, w => F_WRLCK, u => F_UNLCK);
open(my $fh, '+<', $file) or do { print "open: $!\n"; exit 1 };
my $fl = pack('s s x4 q q i x4', $t{$type}, 0, $start, $len, 0);
my $op = $cmd eq 'setlk' ? F_SETLK : $cmd eq 'setlkw' ? F_SETLKW : F_GETLK;
if (!fcntl($fh, $op, $fl)) { print((sort grep { $!{$_} } keys %!)[0] // "errno=" . ($!+0)); print "\n"; exit 1 }
if ($cmd eq 'getlk') {
    my ($ty, undef, undef, undef, $pid) = unpack('s s x4 q q i x4', $fl);
    my %n = (F_RDLCK, 'r', F_WRLCK, 'w', F_UNLCK, 'u');
    print "getlk $n{$ty} $pid\n"; exit 0;
}
print $hold ? "ok $$\n" : "ok\n";
sleep $hold if $hold;
