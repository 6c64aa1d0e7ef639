#!/usr/bin/env bash
# Snapshots on filesystems whose copy_file_range shares extents (XFS with reflink, btrfs), beside ext4:
# each a loop-mounted image on this machine's disk. First a check that copy_file_range makes a clone
# there (filefrag: shared extents); then bench/ab_trees.py with copy_file_range first (a clone on
# XFS and btrfs: bench/experiments/clone-everywhere.patch) and with sendfile first (a real copy:
# sendfile-everywhere.patch), plain and floor, interleaved, saving once Task.init's background start
# is over. The tree picks sendfile first on XFS only (autolog/storage/objects.py: _copy_steps); the
# patches apply to the committed tree (HEAD).
#
#   bash bench/experiments/reflink_filesystems.sh [MEGABYTES] [REPEAT]      (default 1024 5)
#
# Needs root (mount), mkfs.xfs and mkfs.btrfs (Debian: apt-get install xfsprogs btrfs-progs), and
# about 11x MEGABYTES of free disk. A loop device adds its own costs (each read and write goes through
# the image file in the host's page cache): real disks decide; this tells which way to look.
set -euo pipefail
MB=${1:-1024}
REPEAT=${2:-5}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PYTHON=${PYTHON:-python}
WORK=$(mktemp -d /var/tmp/autolog-reflink-XXXXXX)

cleanup() {
  for fs in ext4 xfs btrfs; do umount "$WORK/$fs" 2>/dev/null || true; done
  for way in clone sendfile; do git -C "$ROOT" worktree remove --force "$WORK/$way-everywhere" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

for way in clone sendfile; do
  git -C "$ROOT" worktree add -q --detach "$WORK/$way-everywhere" HEAD
  git -C "$WORK/$way-everywhere" apply "$ROOT/bench/experiments/$way-everywhere.patch"
done

for fs in ext4 xfs btrfs; do
  img="$WORK/$fs.img" mnt="$WORK/$fs"
  truncate -s $((MB * 11 + 2048))M "$img"
  case $fs in
    ext4) mkfs.ext4 -q -F "$img" ;;
    xfs) mkfs.xfs -q -m reflink=1 "$img" ;;
    btrfs) mkfs.btrfs -q "$img" >/dev/null ;;
  esac
  mkdir "$mnt"
  mount -o loop "$img" "$mnt"
  echo "== $fs"
  "$PYTHON" - "$mnt" <<'PY'
import os, subprocess, sys
src, dst = os.path.join(sys.argv[1], "src.bin"), os.path.join(sys.argv[1], "dst.bin")
with open(src, "wb") as f:
    f.write(os.urandom(16 << 20))
os.sync()
fd = os.open(src, os.O_RDONLY)
with open(dst, "wb") as out:
    copied = 0
    while copied < 16 << 20 and (n := os.copy_file_range(fd, out.fileno(), (16 << 20) - copied, copied)):
        copied += n
os.close(fd)
os.sync()
report = subprocess.run(["filefrag", "-v", dst], capture_output=True, text=True).stdout
print("copy_file_range shares extents here:", "yes" if "shared" in report else "no")
os.remove(src)
os.remove(dst)
PY
  TMPDIR="$mnt" "$PYTHON" "$ROOT/bench/ab_trees.py" --megabytes "$MB" --repeat "$REPEAT" --started \
    copy_file_range="$WORK/clone-everywhere" sendfile="$WORK/sendfile-everywhere" | tail -5
  umount "$mnt"
  rm -f "$img"
done
