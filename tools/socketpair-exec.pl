#!/usr/bin/perl
# Connects two commands through an inherited AF_UNIX stream socketpair (the `-fsdev proxy,sock_fd=N`
# form of QEMU's proxy-FS, where the helper serves `-f N`: neither side names a socket).
#
# Usage: socketpair-exec.pl LOG -- SERVER-CMD... -- CLIENT-CMD...
#   Every argument containing @FD@ gets it replaced by the number of that command's end of the pair.
#   SERVER-CMD runs in a child (stdin /dev/null, stdout+stderr appended to LOG); this process then
#   becomes CLIENT-CMD (exec), so a caller's pid and exit status are CLIENT-CMD's. When the client
#   exits its end closes and the server sees EOF.
use strict;
use warnings;
use Socket;
use Fcntl;
use POSIX ();

my $log = shift @ARGV;
die "usage: socketpair-exec.pl LOG -- SERVER-CMD... -- CLIENT-CMD...\n" unless defined $log && @ARGV && $ARGV[0] eq '--';
shift @ARGV;
my (@server, @client);
my $cur = \@server;
for my $a (@ARGV) {
    if ($a eq '--' && $cur == \@server) { $cur = \@client; next; }
    push @$cur, $a;
}
die "socketpair-exec: need both commands\n" unless @server && @client;

socketpair(my $s, my $c, AF_UNIX, SOCK_STREAM, 0) or die "socketpair: $!\n";
# Perl marks new fds close-on-exec; each command must inherit its end.
for my $h ($s, $c) {
    my $fl = fcntl($h, F_GETFD, 0) or die "fcntl: $!\n";
    fcntl($h, F_SETFD, $fl & ~FD_CLOEXEC) or die "fcntl: $!\n";
}
sub subst { my ($fd, @cmd) = @_; s/\@FD\@/$fd/g for @cmd; return @cmd; }

my $pid = fork() // die "fork: $!\n";
if ($pid == 0) {
    close $c;
    open(STDIN, '<', '/dev/null') or POSIX::_exit(127);
    open(STDOUT, '>>', $log) or POSIX::_exit(127);
    open(STDERR, '>&', \*STDOUT) or POSIX::_exit(127);
    my @cmd = subst(fileno($s), @server);
    exec { $cmd[0] } @cmd;
    print STDERR "socketpair-exec: exec $cmd[0]: $!\n";
    POSIX::_exit(127);
}
close $s;
my @cmd = subst(fileno($c), @client);
exec { $cmd[0] } @cmd;
die "socketpair-exec: exec $cmd[0]: $!\n";
