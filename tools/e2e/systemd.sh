#!/usr/bin/env bash
# The packaged systemd units under a real systemd (issue 17). The .deb (tools/package.sh --no-build) is installed
# into a copy-on-write overlay of the lab's trixie tree, and that tree's own systemd 257 boots as PID 1 of a
# container made here with unshare (pid, mount, cgroup, uts, ipc, net namespaces; a cgroup2 subtree of its own;
# /proc/sys and /sys read-only; no module, raw-I/O or clock capabilities), the way systemd-nspawn runs one. No
# systemd on the host and no KVM are needed, and no package is added to the host or the lab tree. Then, with
# systemctl inside the container:
#   boot                     systemd reaches multi-user.target (running, or degraded by units not ours)
#   (the README's walk-through: export /srv/private/share, parent 0700, instance srv-private-share, `systemctl enable
#   --now` of the helper and the socket)
#   helper-*                 virtfs-proxy-helper@INST.service starts (Type=notify) as root under its hardening and
#                            serves the export on /run/virtfs/INST/helper.sock
#   socket-*                 vhost-user-9p@INST.socket listens (virtfs:kvm 0660); the service is not running yet
#   notify-gates             control: with a drop-in that keeps NOTIFY_SOCKET from the backend
#                            (UnsetEnvironment=), the activated service stays "activating" and fails its start
#                            timeout: systemd's "active" below means READY=1 arrived, not just that a process runs
#   activation-*             a vhost-user front-end (a perl client) connects: systemd starts the service from the
#                            socket, GET_FEATURES and GET_PROTOCOL_FEATURES are answered (VERSION_1, MOUNT_TAG,
#                            PROTOCOL_FEATURES; CONFIG), the unit is active only once READY=1 came, its main process
#                            runs as virtfs, seccomp-confined by itself (log line) on top of the unit's filters, and
#                            cannot list the export by its host path (InaccessiblePaths=%f)
#   counters-*               its .NET diagnostic socket is in /run/vhost-user-9p-diag/INSTANCE (virtfs 0600, dir 0700),
#                            and dotnet-counters (if installed: tools/e2e/service.sh does) reads VirtFs.Backend there
#   disconnect-exit          the front-end leaves: the backend exits 0, the unit ends with Result=success
#   qemu-*                   QEMU 11 (the lab's, inside the container) realizes vhost-user-test-device-pci on the
#                            socket (GET_CONFIG answered: the tag), then `systemctl stop` while QEMU holds the
#                            connection: the backend drains and exits 0 (Result=success, the drain in the journal)
#   helper-stop              the helper stops cleanly
# Usage: tools/e2e/systemd.sh [--no-build] [--log-dir DIR]   (packages artifacts/bin: run tools/build.sh first)
# Prints PASS/FAIL lines. Exit: 0 all passed, 1 something failed, 3 cannot run here. About 30-60 s.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS="$(cd "$HERE/.." && pwd)"
LOG_DIR="" MODE=outer
while (( $# )); do
    case "$1" in
        --no-build) shift ;;
        --log-dir) LOG_DIR="$2"; shift 2 ;;
        --inside) MODE=inside; shift ;;
        --container-init) MODE=init; shift ;;
        -h|--help) sed -n '2,30p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "systemd: unknown option $1" >&2; exit 2 ;;
    esac
done
LOWER="${VIRTFS_CACHE:-/var/cache/virtfs}/trixie"
# The README's walk-through: the export /srv/private/share under a 0700 parent; the instance is its escaped path.
EXPORT=/srv/private/share INST=srv-private-share
VSOCK=/run/vhost-user-9p/$INST/vhost.sock

# --- PID 1 of the container, before systemd: its file systems, then systemd in place of this shell -----------
if [[ "$MODE" == init ]]; then
    R="$ROOT"
    set -e
    mount -t proc proc "$R/proc"
    # The host kernel's tunables stay out of reach (systemd-sysctl and binfmt are skipped on a read-only /proc/sys).
    mount --bind "$R/proc/sys" "$R/proc/sys"; mount -o remount,bind,ro "$R/proc/sys"
    [[ -e "$R/proc/sysrq-trigger" ]] && mount --bind /dev/null "$R/proc/sysrq-trigger"
    mount -t sysfs -o ro sysfs "$R/sys"
    # This cgroup namespace's root is the subtree made for the container: systemd sees only that.
    mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"
    mount -t tmpfs -o mode=0755,nosuid tmpfs "$R/dev"
    for d in null zero full random urandom tty; do touch "$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"; done
    mkdir "$R/dev/pts" "$R/dev/shm"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$R/dev/pts"; ln -s pts/ptmx "$R/dev/ptmx"
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/dev/shm"
    cd "$R"; mkdir -p .oldroot; pivot_root . .oldroot; umount -l /.oldroot; rmdir /.oldroot
    # The capabilities systemd-nspawn leaves a container (no module loading, raw I/O, clock or network admin).
    exec env -i container=virtfs-e2e PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        /usr/bin/setpriv --bounding-set -sys_module,-sys_rawio,-sys_time,-mac_admin,-mac_override,-syslog,-wake_alarm,-block_suspend,-sys_pacct,-bpf,-perfmon,-checkpoint_restore \
        /usr/lib/systemd/systemd --unit=multi-user.target --log-target=journal-or-kmsg
fi

if [[ "$MODE" == outer ]]; then
    [[ "$(id -u)" == 0 ]] || { echo "systemd: NEEDS: root (namespaces, overlay mount)" >&2; exit 3; }
    for c in unshare nsenter; do command -v $c >/dev/null || { echo "systemd: NEEDS: $c (util-linux)" >&2; exit 3; }; done
    [[ -x "$LOWER/usr/bin/dpkg" && -x "$LOWER/usr/lib/systemd/systemd" && -x "$LOWER/usr/bin/setpriv" ]] || {
        echo "systemd: NEEDS: the lab's trixie tree with systemd (tools/lab.sh)" >&2; exit 3; }
    WORK="$(mktemp -d /tmp/virtfs-systemd.XXXXXX)"; chmod 0755 "$WORK"
    trap 'rm -rf "$WORK"' EXIT
    DEB="$("$TOOLS/package.sh" --no-build --out "$WORK" 2>"$WORK/package.err")" || {
        echo "FAIL: systemd package-build ($(tail -n 3 "$WORK/package.err" | tr '\n' ' '))"; exit 1; }
    # A private mount namespace: the overlay, the cgroup2 mount and the container's mounts vanish with it.
    WORK="$WORK" DEB="$DEB" unshare --mount --propagation private -- "${BASH_SOURCE[0]}" --inside ${LOG_DIR:+--log-dir "$LOG_DIR"}
    exit $?
fi

# --- inside the private mount namespace ------------------------------------------------------------------------
T0=$(date +%s)
P=0 F=0
pass() { echo "PASS: systemd $1"; P=$((P + 1)); }
fail() { echo "FAIL: systemd $1 (${2:-})"; F=$((F + 1)); }
check() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name" "${WHY:-check failed}"; fi; WHY=""; }
ROOT="$WORK/root"
mkdir -p "$WORK/upper" "$WORK/ovlwork" "$ROOT" "$WORK/cgroup2"
mount -t overlay overlay -o "lowerdir=$LOWER,upperdir=$WORK/upper,workdir=$WORK/ovlwork" "$ROOT" || {
    echo "systemd: NEEDS: an overlay mount (overlayfs)" >&2; exit 3; }
cp "$DEB" "$ROOT/tmp/virtfs.deb"
if ! chroot "$ROOT" dpkg -i /tmp/virtfs.deb >"$WORK/dpkg.log" 2>&1; then
    echo "FAIL: systemd dpkg-install ($(tail -n 3 "$WORK/dpkg.log" | tr '\n' ' '))"; exit 1
fi
# The export, with a file; the lab tree has no kvm group (udev makes it on a real host): the socket unit's group.
mkdir -p "$ROOT$EXPORT"; chmod 0700 "$(dirname "$ROOT$EXPORT")"; echo hello >"$ROOT$EXPORT/hello.txt"
[[ "$(chroot "$ROOT" systemd-escape --path "$EXPORT")" == "$INST" ]] || { echo "FAIL: systemd instance name"; exit 1; }
chroot "$ROOT" groupadd -f --system kvm
# The front-end: asks what a vhost-user front-end asks first, prints the answers, then holds the connection until
# told to go (a file appears) and closes it.
cat >"$ROOT/usr/local/bin/vu-client" <<'PERL'
#!/usr/bin/perl
# vu-client SOCKET GO-FILE: GET_FEATURES (1) and GET_PROTOCOL_FEATURES (15), replies printed in hex.
use strict; use warnings; use Socket;
my ($path, $go) = @ARGV;
socket(my $s, AF_UNIX, SOCK_STREAM, 0) or die "socket: $!";
connect($s, pack_sockaddr_un($path)) or die "connect $path: $!";
sub rd { my ($n) = @_; my $b = ''; while (length($b) < $n) { my $r = sysread($s, $b, $n - length($b), length($b)); die "short read\n" unless $r; } $b }
sub req {
    my ($code) = @_;
    syswrite($s, pack('VVV', $code, 1, 0)) == 12 or die "write: $!";
    my ($rc, $flags, $size) = unpack('VVV', rd(12));
    die "reply to $code: request $rc flags $flags size $size\n" unless $rc == $code && ($flags & 4) && $size == 8;
    return unpack('Q<', rd(8));
}
$| = 1;
printf "features=0x%x\n", req(1);
printf "protocol=0x%x\n", req(15);
for (1 .. 600) { last if -e $go; select(undef, undef, undef, 0.1); }
close $s;
print "closed\n";
PERL
chmod 0755 "$ROOT/usr/local/bin/vu-client"

# The container's own cgroup: a child of ours in the cgroup2 hierarchy (mounted here; on a hybrid host that is the
# same tree as /sys/fs/cgroup/unified). systemd inside manages that subtree and nothing above it.
mount -t cgroup2 cgroup2 "$WORK/cgroup2" || { echo "systemd: NEEDS: cgroup2" >&2; exit 3; }
CG="$WORK/cgroup2$(sed -n 's/^0:://p' /proc/self/cgroup)"; CG="${CG%/}/virtfs-systemd-$$"
mkdir "$CG" || { echo "systemd: NEEDS: a writable cgroup2 hierarchy" >&2; exit 3; }
UPID="" CPID=""
cleanup() {
    [[ -n "$CPID" ]] && kill -KILL "$CPID" 2>/dev/null      # the container's PID 1: the whole pid namespace goes
    [[ -n "$UPID" ]] && wait "$UPID" 2>/dev/null
    local i
    for (( i = 0; i < 50; i++ )); do
        find "$CG" -depth -type d -exec rmdir {} + 2>/dev/null; [[ -d "$CG" ]] || break; sleep 0.1
    done
    [[ -n "$LOG_DIR" ]] && { mkdir -p "$LOG_DIR"; cp "$WORK"/*.log "$LOG_DIR/" 2>/dev/null; }
    umount -l "$WORK/cgroup2" "$ROOT" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$CG" \
    env ROOT="$ROOT" unshare --pid --fork --cgroup --uts --ipc --net --mount --propagation private \
    "${BASH_SOURCE[0]}" --container-init >"$WORK/container.log" 2>&1 &
UPID=$!
for (( i = 0; i < 100; i++ )); do
    CPID="$(cat /proc/$UPID/task/$UPID/children 2>/dev/null | awk '{ print $1 }')"
    [[ -n "$CPID" && "$(cat /proc/$CPID/comm 2>/dev/null)" == systemd ]] && break
    sleep 0.1
done
in_ct() { nsenter -t "$CPID" -m -p -u -i -n -r -w -- "$@"; }
sctl() { in_ct systemctl --no-pager "$@"; }
prop() { sctl show -P "$2" "$1"; }   # unit property
journal() { in_ct journalctl --no-pager -o cat -u "$1"; }

t=$(date +%s)
# systemctl talks to PID 1 on /run/systemd/private, which exists once systemd is up.
for (( i = 0; i < 300; i++ )); do in_ct test -S /run/systemd/private 2>/dev/null && break; sleep 0.1; done
state="$(timeout 90 nsenter -t "$CPID" -m -p -r -w -- systemctl is-system-running --wait 2>&1)"
if [[ "$state" == running || "$state" == degraded ]]; then
    pass "boot (systemd $(in_ct systemctl --version | awk 'NR == 1 { print $2 }') as PID 1, $state, $(( $(date +%s) - t ))s)"
    [[ "$state" == degraded ]] && sctl --failed --plain --no-legend | sed 's/^/systemd: failed unit (not ours): /' >&2
else
    fail boot "is-system-running: ${state:-nothing}; $(tail -n 5 "$WORK/container.log" | tr '\n' ' ')"
    echo "systemd: passed=$P failed=$F"; exit 1
fi

# --- the helper ---
H=virtfs-proxy-helper@$INST.service
if sctl enable --now "$H" 2>"$WORK/err"; then
    pid="$(prop "$H" MainPID)"
    WHY="state $(prop "$H" ActiveState), pid $pid uid $(in_ct stat -c %u /proc/"$pid" 2>/dev/null)"
    check helper-active [ "$(prop "$H" ActiveState)" == active -a "$(in_ct stat -c %u /proc/"$pid")" == 0 ]
    WHY="no socket /run/virtfs/$INST/helper.sock"
    check helper-socket in_ct test -S "/run/virtfs/$INST/helper.sock"
else
    fail helper-active "$(cat "$WORK/err"; journal "$H" | tail -n 8 | tr '\n' ' ')"
fi

# --- the socket ---
S=vhost-user-9p@$INST.socket B=vhost-user-9p@$INST.service
if sctl enable --now "$S" 2>"$WORK/err"; then
    perm="$(in_ct stat -c '%F %U:%G %a' "$VSOCK" 2>&1)"
    WHY="$(prop "$S" ActiveState); $VSOCK: $perm"
    check socket-listening [ "$(prop "$S" ActiveState)" == active -a "$perm" == "socket virtfs:kvm 660" ]
    WHY="the backend runs before any front-end: $(prop "$B" ActiveState)"
    check socket-service-idle [ "$(prop "$B" ActiveState)" == inactive ]
else
    fail socket-listening "$(cat "$WORK/err")"
fi

# --- control: systemd must wait for READY=1 (notifications ignored: the start never completes) ---
in_ct sh -c "mkdir -p /run/systemd/system/$B.d && printf '[Service]\nUnsetEnvironment=NOTIFY_SOCKET\nTimeoutStartSec=4\n' >/run/systemd/system/$B.d/gate.conf"
sctl daemon-reload
in_ct vu-client "$VSOCK" /tmp/go-gate >"$WORK/client-gate.log" 2>&1 &
GPID=$!
states=""
for (( i = 0; i < 40; i++ )); do
    s="$(prop "$B" ActiveState)"; [[ " $states" == *" $s "* ]] || states+="$s "
    [[ "$s" == failed ]] && break; sleep 0.25
done
in_ct touch /tmp/go-gate; wait "$GPID" 2>/dev/null
WHY="states seen: $states; result $(prop "$B" Result); client: $(tr '\n' ' ' <"$WORK/client-gate.log")"
gated() { [[ " $states" != *" active "* && " $states" == *" activating "* && "$(prop "$B" Result)" == timeout ]]; }
check notify-gates gated
in_ct rm -rf "/run/systemd/system/$B.d"
sctl daemon-reload; sctl reset-failed "$B" "$S" 2>/dev/null
[[ "$(prop "$S" ActiveState)" == active ]] || sctl restart "$S"

# --- socket activation, readiness, what the front-end is answered ---
t=$(date +%s)
in_ct vu-client "$VSOCK" /tmp/go-1 >"$WORK/client-1.log" 2>&1 &
CL=$!
states=""
for (( i = 0; i < 200; i++ )); do
    s="$(prop "$B" ActiveState)"; [[ " $states" == *" $s "* ]] || states+="$s "
    [[ "$s" == active || "$s" == failed ]] && break; sleep 0.1
done
WHY="states seen: $states; $(journal "$B" | tail -n 5 | tr '\n' ' ')"
check activation-active [ "$(prop "$B" ActiveState)" == active ]
echo "systemd: activation to active: $(( $(date +%s) - t ))s, states seen: $states" >&2
for (( i = 0; i < 50; i++ )); do grep -q '^protocol=' "$WORK/client-1.log" && break; sleep 0.1; done
feat="$(sed -n 's/^features=//p' "$WORK/client-1.log")" proto="$(sed -n 's/^protocol=//p' "$WORK/client-1.log")"
# VERSION_1 (32), PROTOCOL_FEATURES (30), VIRTIO_9P_MOUNT_TAG (0); protocol CONFIG (9)
answers_ok() { [[ -n "$feat" && -n "$proto" ]] && (( (feat >> 32 & 1) && (feat >> 30 & 1) && (feat & 1) && (proto >> 9 & 1) )); }
WHY="client: $(tr '\n' ' ' <"$WORK/client-1.log")"
check activation-answers answers_ok
pid="$(prop "$B" MainPID)"
st="$(in_ct cat /proc/"$pid"/status 2>/dev/null)"
WHY="main pid $pid: $(grep -E '^(Uid|Seccomp|NoNewPrivs|CapEff)' <<<"$st" | tr '\n\t' '  ')"
check activation-confined [ "$(awk '/^Uid:/ { print $2 }' <<<"$st")" == "$(in_ct id -u virtfs)" \
    -a "$(awk '/^Seccomp:/ { print $2 }' <<<"$st")" == 2 -a "$(awk '/^NoNewPrivs:/ { print $2 }' <<<"$st")" == 1 \
    -a "$(awk '/^CapEff:/ { print $2 }' <<<"$st")" == 0000000000000000 ]
# InaccessiblePaths=%f: the export is out of the backend's sight, whatever the permissions (looked at as root).
WHY="not: $EXPORT lists in PID 1's mount namespace and is empty in the backend's"
hidden() { # control: the file is there in PID 1's mount namespace
    in_ct nsenter -t 1 -m ls "$EXPORT" 2>&1 | grep -q hello.txt &&
        ! in_ct nsenter -t "$pid" -m ls "$EXPORT" 2>&1 | grep -q hello.txt
}
check activation-export-hidden hidden
# The .NET diagnostic socket where the unit puts it (TMPDIR=/run/vhost-user-9p-diag/INSTANCE, a 0700 RuntimeDirectory):
# made under MemoryDenyWriteExecute, RestrictAddressFamilies and the backend's own filter; read from the host with
# dotnet-counters when there is one (tools/e2e/service.sh installs it) over that socket.
DIAG=/run/vhost-user-9p-diag/$INST
dsock="$(in_ct sh -c "ls $DIAG/dotnet-diagnostic-$pid-*-socket" 2>/dev/null | head -n 1)"
WHY="socket ${dsock:-none in $DIAG}: $(in_ct stat -c '%U %a' "$dsock" "$DIAG" 2>&1 | tr '\n' ' ')"
check counters-socket [ -n "$dsock" -a "$(in_ct stat -c '%U %a' "$dsock" "$DIAG" 2>&1 | tr '\n' ' ')" == "virtfs 600 virtfs 700 " ]
COUNTERS="${VIRTFS_DOTNET_COUNTERS:-$(command -v dotnet-counters || true)}"
[[ -z "$COUNTERS" && -x "${VIRTFS_CACHE:-/var/cache/virtfs}/dotnet-tools/dotnet-counters" ]] && \
    COUNTERS="${VIRTFS_CACHE:-/var/cache/virtfs}/dotnet-tools/dotnet-counters"
if [[ -n "$COUNTERS" && -n "$dsock" ]]; then
    # -n NAME would look for the host's pid in the socket's name; the container's pid namespace numbers it otherwise.
    DOTNET_CLI_TELEMETRY_OPTOUT=1 timeout 60 "$COUNTERS" monitor --diagnostic-port "/proc/$CPID/root$dsock,connect" \
        --counters VirtFs.Backend --duration 00:00:00:03 </dev/null >"$WORK/counters.log" 2>&1
    WHY="dotnet-counters: $(tr -d '\033' <"$WORK/counters.log" | tail -c 300)"
    check counters-read grep -Eq 'virtfs\.helper\.round_trips[^0-9]*[1-9]' "$WORK/counters.log"
else
    echo "systemd: no dotnet-counters (tools/e2e/service.sh installs it); the unit's counters not read" >&2
fi
WHY="no confinement line in the journal: $(journal "$B" | head -n 8 | tr '\n' ' ')"
check activation-seccomp-logged eval 'journal "$B" | grep -q "confined: no capabilities, no_new_privs, seccomp kill"'

# --- the front-end leaves: exit 0 ---
in_ct touch /tmp/go-1; wait "$CL" 2>/dev/null
for (( i = 0; i < 100; i++ )); do [[ "$(prop "$B" ActiveState)" == inactive || "$(prop "$B" ActiveState)" == failed ]] && break; sleep 0.1; done
WHY="$(prop "$B" ActiveState) result $(prop "$B" Result) status $(prop "$B" ExecMainStatus); $(journal "$B" | tail -n 3 | tr '\n' ' ')"
check disconnect-exit [ "$(prop "$B" ActiveState)" == inactive -a "$(prop "$B" Result)" == success -a "$(prop "$B" ExecMainStatus)" == 0 ]
WHY="the socket stopped listening: $(prop "$S" ActiveState)"
check socket-still-listening [ "$(prop "$S" ActiveState)" == active ]

# --- a real QEMU: the device realized on the socket, then systemctl stop while it is connected ---
cfg="$(in_ct vhost-user-9p --socket-path "$VSOCK" --tag "$INST" --print-qemu-args 2>&1 | grep -o 'config_size=[0-9]*')"
in_ct qemu-system-x86_64 -accel tcg -machine q35,memory-backend=mem -m 256M -S -display none -nic none -serial none \
    -monitor none -object memory-backend-memfd,id=mem,size=256M,share=on -chardev "socket,id=vu,path=$VSOCK" \
    -device "vhost-user-test-device-pci,chardev=vu,virtio-id=9,num_vqs=1,vq_size=1024,$cfg" >"$WORK/qemu.log" 2>&1 &
QPID=$!
for (( i = 0; i < 300; i++ )); do
    [[ "$(prop "$B" ActiveState)" == active ]] && journal "$B" | grep -q 'front-end connected' && break
    kill -0 "$QPID" 2>/dev/null || break; sleep 0.1
done
sleep 2   # realize: GET_CONFIG and the rest of the start of the conversation
WHY="qemu: $(tr '\n' ' ' <"$WORK/qemu.log"); backend $(prop "$B" ActiveState)"
realized() { [[ "$(prop "$B" ActiveState)" == active ]] && kill -0 "$QPID" 2>/dev/null; }
check qemu-realized realized
t=$(date +%s)
sctl stop "$B"
echo "systemd: systemctl stop took $(( $(date +%s) - t ))s" >&2
WHY="result $(prop "$B" Result) code $(prop "$B" ExecMainCode) status $(prop "$B" ExecMainStatus); $(journal "$B" | tail -n 4 | tr '\n' ' ')"
check qemu-stop-exit0 [ "$(prop "$B" Result)" == success -a "$(prop "$B" ExecMainCode)" == 1 -a "$(prop "$B" ExecMainStatus)" == 0 ]
WHY="no drain in the journal: $(journal "$B" | tail -n 6 | tr '\n' ' ')"
check qemu-stop-drained eval 'journal "$B" | grep -q "stopped; every request taken was answered"'
kill -KILL "$QPID" 2>/dev/null; wait "$QPID" 2>/dev/null

sctl stop "$S" "$H"
WHY="helper: result $(prop "$H" Result) status $(prop "$H" ExecMainStatus); $(journal "$H" | tail -n 3 | tr '\n' ' ')"
check helper-stop [ "$(prop "$H" Result)" == success -a "$(prop "$H" ActiveState)" == inactive ]
# For --log-dir: both units' journals, with times.
in_ct journalctl --no-pager -o short-monotonic -u "$H" >"$WORK/journal-helper.log" 2>&1
in_ct journalctl --no-pager -o short-monotonic -u "$B" -u "$S" >"$WORK/journal-backend.log" 2>&1
echo "systemd: passed=$P failed=$F ($(( $(date +%s) - T0 ))s)"
(( F == 0 ))
