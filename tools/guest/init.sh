#!/bin/busybox sh
# PID 1 of the VirtFs lab guest (busybox initramfs built by tools/lab.sh).
#
# 1. loads the 9p and virtiofs modules (no udev, no modprobe: plain insmod in dependency order);
# 2. mounts the lab's trixie tree read-only over QEMU's built-in 9p (tag "rootfs"), with tmpfs on
#    /tmp and /run and /proc /sys /dev bound in, so the guest has a full Debian userland;
# 3. mounts the share under test (kernel command line, below) at virtfs.mnt inside that tree;
# 4. runs the job script, or an interactive shell on the console, chrooted into the tree;
# 5. unmounts the share (unmount is part of what we test), prints the markers and powers off.
#
# Kernel command line (set by tools/vm.sh):
#   virtfs.job=ID        run /var/lib/virtfs-jobs/ID/job.sh (the host writes it into the tree)
#   virtfs.fstype=T      9p (default) | virtiofs | none
#   virtfs.tag=TAG       mount tag (default: share)
#   virtfs.opts=OPTS     extra mount options; "%2C" "%20" "%3D" "%25" stand for , space = %
#                        (default for 9p: access=user,msize=512000)
#   virtfs.mnt=DIR       mount point (default /mnt; must exist in the tree, which is read-only)
# Markers on the console, for the host:
#   VIRTFS-INIT-ERROR: why     init itself failed (then VIRTFS-EXIT:2xx)
#   VIRTFS-MOUNT:ok|failed     the share's mount
#   VIRTFS-UMOUNT:ok|failed    the share's unmount
#   VIRTFS-EXIT:<status>       always the last line: the job's exit status
/bin/busybox mkdir -p /bin /proc /sys /dev /newroot
/bin/busybox --install -s /bin
export PATH=/bin
set -f  # the command line is split on spaces below; never glob it

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1

poweroff_now() {
    sync
    poweroff -f
    # not reached; if it is, the kernel panics when init exits and QEMU (-no-reboot) stops
    exit 1
}
fail() {
    echo "VIRTFS-INIT-ERROR: $2"
    echo "VIRTFS-EXIT:$1"
    poweroff_now
}
param() {
    for w in $(cat /proc/cmdline); do
        case "$w" in "$1="*) echo "${w#*=}"; return 0 ;; esac
    done
    echo "$2"
}
decode() { echo "$1" | sed -e 's/%2[Cc]/,/g' -e 's/%20/ /g' -e 's/%3[Dd]/=/g' -e 's/%25/%/g'; }

JOB=$(param virtfs.job "")
FSTYPE=$(param virtfs.fstype 9p)
TAG=$(param virtfs.tag share)
MNT=$(param virtfs.mnt /mnt)
OPTS=$(decode "$(param virtfs.opts "")")

while read -r m; do
    [ -n "$m" ] || continue
    insmod "/modules/$m.ko" || fail 201 "insmod $m failed"
done </modules/order

R=/newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose rootfs $R \
    || fail 202 "cannot mount the lab tree (tag rootfs)"
mount -t tmpfs -o mode=1777 tmpfs $R/tmp || fail 203 "tmpfs /tmp"
mount -t tmpfs -o mode=0755 tmpfs $R/run || fail 203 "tmpfs /run"
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
for d in proc sys dev; do mount --rbind /$d $R/$d || fail 203 "bind /$d"; done

[ -d "$R$MNT" ] || fail 204 "mount point $MNT does not exist in the (read-only) tree"
MOUNTED=0
case "$FSTYPE" in
    9p)
        o=trans=virtio,version=9p2000.L
        if [ -n "$OPTS" ]; then o="$o,$OPTS"; else o="$o,access=user,msize=512000"; fi
        echo "virtfs-init: mount -t 9p -o $o $TAG $MNT"
        if mount -t 9p -o "$o" "$TAG" "$R$MNT"; then MOUNTED=1; fi ;;
    virtiofs)
        echo "virtfs-init: mount -t virtiofs ${OPTS:+-o $OPTS }$TAG $MNT"
        if mount -t virtiofs ${OPTS:+-o "$OPTS"} "$TAG" "$R$MNT"; then MOUNTED=1; fi ;;
    none) ;;
    *) fail 205 "unknown virtfs.fstype=$FSTYPE" ;;
esac
if [ "$FSTYPE" != none ]; then
    if [ $MOUNTED = 1 ]; then echo "VIRTFS-MOUNT:ok"; else echo "VIRTFS-MOUNT:failed"; fi
fi

ENV="HOME=/tmp PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8"
ENV="$ENV VIRTFS_MNT=$MNT VIRTFS_TAG=$TAG VIRTFS_FSTYPE=$FSTYPE"
if [ -n "$JOB" ]; then
    JD=/var/lib/virtfs-jobs/$JOB
    if [ $MOUNTED = 0 ] && [ "$FSTYPE" != none ]; then
        STATUS=206
        echo "VIRTFS-INIT-ERROR: the share did not mount; job not run"
    elif [ -f "$R$JD/job.sh" ]; then
        # shellcheck disable=SC2086  # ENV is a list of words on purpose
        chroot $R /usr/bin/env -i $ENV TERM=dumb VIRTFS_JOBDIR=$JD /bin/sh -c "cd / && exec /bin/sh $JD/job.sh"
        STATUS=$?
    else
        STATUS=207
        echo "VIRTFS-INIT-ERROR: no job script $JD/job.sh"
    fi
else
    echo "virtfs-init: interactive shell; the share is at $MNT; exit the shell to power off"
    # cttyhack gives the shell the console as controlling tty, so ^C works.
    # shellcheck disable=SC2086
    setsid cttyhack chroot $R /usr/bin/env -i $ENV TERM=${TERM:-linux} /bin/bash -l
    STATUS=$?
fi

# Nothing the job left behind may keep the share busy.
cd /
kill -TERM -1 2>/dev/null; sleep 0.2; kill -KILL -1 2>/dev/null
sync
if [ $MOUNTED = 1 ]; then
    if umount "$R$MNT"; then echo "VIRTFS-UMOUNT:ok"; else echo "VIRTFS-UMOUNT:failed"; fi
fi
echo "VIRTFS-EXIT:$STATUS"
poweroff_now
