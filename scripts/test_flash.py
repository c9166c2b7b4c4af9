#!/usr/bin/env python3
"""Behaviour tests for scripts/flash.sh against real loop devices and regular files.

Run from the worktree root (as root, which CI is):

    python3 -m unittest discover -s scripts -p 'test_flash.py' -v

Every loop device, mount and swap area a test creates is released through addCleanup, so
it goes away even when the test fails. Tests that expect a refusal run the script with a
PATH whose only `dd` and `bmaptool` are fakes that record the call and exit 1: a broken
refusal then fails the test instead of writing. The root-disk test relies on that: it points
the script at this machine's own disk.

Needs: util-linux (losetup, sfdisk, partx, mount, mkswap, swapon, lsblk, findmnt),
e2fsprogs (mkfs.ext4), bmap-tools (bmaptool), bzip2, gzip, xz-utils, coreutils.
"""

import bz2
import gzip
import hashlib
import lzma
import os
import shutil
import stat
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
FLASH = os.path.join(HERE, "flash.sh")
MiB = 1024 * 1024
REFUSED = 2
ABORTED = 3


def _loop_reason():
    """Why these tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root: the tests attach loop devices and mount file systems"
    if shutil.which("losetup") is None:
        return "losetup (util-linux) is not installed"
    if not os.path.exists("/dev/loop-control"):
        return "no /dev/loop-control: this kernel/container offers no loop devices"
    return None


SKIP_REASON = _loop_reason()


def sh(*args, **kwargs):
    """Run a helper command, failing loudly with its output."""
    res = subprocess.run(list(args), capture_output=True, text=True, **kwargs)
    if res.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({res.returncode}): {res.stderr.strip()}")
    return res.stdout


def write_image(path, size, seed):
    """A sparse image with an MBR-like head, a few data regions and holes between them,
    so that bmaptool has something to skip."""
    rnd = _Rand(seed)
    with open(path, "wb") as f:
        f.truncate(size)
        for off, length in ((0, MiB), (2 * MiB, MiB // 2), (size - MiB // 4, MiB // 4)):
            f.seek(off)
            f.write(rnd.bytes(length))
    return path


class _Rand:
    """Deterministic pseudo-random bytes (SHAKE-256 of a seed: fast, stable across Pythons)."""

    def __init__(self, seed):
        self._seed = str(seed).encode()

    def bytes(self, n):
        return hashlib.shake_256(self._seed).digest(n)


def compress(src, kind):
    dst = f"{src}.{kind}"
    opener = {"bz2": bz2.open, "gz": gzip.open, "xz": lzma.open}[kind]
    with open(src, "rb") as fin, opener(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return dst


def read_bytes(path, n=None):
    with open(path, "rb") as f:
        return f.read() if n is None else f.read(n)


@unittest.skipUnless(SKIP_REASON is None, SKIP_REASON or "")
class FlashTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cls_tmp = tempfile.mkdtemp(prefix="tmc-flash-bins-")
        cls.addClassCleanup(shutil.rmtree, cls.cls_tmp, ignore_errors=True)
        # PATH without bmaptool: symlinks to every other program on PATH. The script must then
        # choose dd, with no test-only switch in it.
        cls.nobmap_bin = os.path.join(cls.cls_tmp, "no-bmaptool")
        cls._link_path(cls.nobmap_bin, exclude={"bmaptool"})
        # PATH for tests that expect a refusal: no real dd or bmaptool anywhere on it, only fakes
        # that record the call and fail.
        cls.guard_bin = os.path.join(cls.cls_tmp, "guarded")
        cls._link_path(cls.guard_bin, exclude={"bmaptool", "dd"})
        for tool in ("dd", "bmaptool"):
            fake = os.path.join(cls.guard_bin, tool)
            with open(fake, "w") as f:
                f.write('#!/bin/sh\necho "$0 $*" >> "$FLASH_TEST_CALLS"\nexit 1\n')
            os.chmod(fake, 0o755)

    @staticmethod
    def _link_path(bindir, exclude):
        os.makedirs(bindir)
        for d in os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(os.pathsep):
            if not os.path.isdir(d):
                continue
            for name in os.listdir(d):
                src = os.path.join(d, name)
                dst = os.path.join(bindir, name)
                if name in exclude or os.path.lexists(dst):
                    continue
                if os.path.isfile(src) and os.access(src, os.X_OK):
                    os.symlink(src, dst)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tmc-flash-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.calls = os.path.join(self.tmp, "fake-calls.log")

    # -- fixtures ---------------------------------------------------------------------------

    def loop(self, size, junk=True, partscan=False, read_only=False, name="disk.bin"):
        """A loop device over a new backing file: random junk (so a write that skips blocks
        shows) or zeros. Detached in cleanup."""
        backing = os.path.join(self.tmp, name)
        with open(backing, "wb") as f:
            if junk:
                f.write(_Rand(name).bytes(size))
            else:
                f.truncate(size)
        args = ["losetup", "-f", "--show"]
        if partscan:
            args.append("-P")
        if read_only:
            args.append("-r")
        dev = sh(*args, backing).strip()
        self.addCleanup(self._detach, dev)
        return dev

    @staticmethod
    def _detach(dev):
        # Partitions added with partx go with the loop device; drop them first anyway so that a
        # kernel that keeps them cannot leave stale nodes behind.
        subprocess.run(["partx", "-d", dev], capture_output=True)
        sh("losetup", "-d", dev)

    def partition(self, dev):
        """/dev/loopNp1 for a loop device whose backing file holds a partition table. Kernels
        built without partition parsers (CONFIG_MSDOS_PARTITION=n, e.g. minimal VM kernels) do
        not find it on `losetup -P`; partx parses the table in user space and adds it."""
        part = f"{dev}p1"
        if not os.path.exists(part):
            sh("partx", "-a", dev)
        for _ in range(50):
            if os.path.exists(part):
                return part
            time.sleep(0.1)
        self.fail(f"{part} did not appear after losetup -P and partx -a")

    def mount(self, dev):
        mnt = tempfile.mkdtemp(prefix="mnt-", dir=self.tmp)
        sh("mount", dev, mnt)
        self.addCleanup(self._umount, mnt)
        return mnt

    @staticmethod
    def _umount(mnt):
        if os.path.ismount(mnt):
            sh("umount", mnt)

    def image(self, size=6 * MiB, kind=None, bmap=False, seed="image"):
        """Returns (path to give the script, raw image bytes)."""
        raw = write_image(os.path.join(self.tmp, "tmc-image.rootfs.wic"), size, seed)
        if bmap:
            sh("bmaptool", "create", "-o", raw[: -len(".wic")] + ".wic.bmap", raw)
        data = read_bytes(raw)
        path = compress(raw, kind) if kind else raw
        return path, data

    # -- running the script -------------------------------------------------------------------

    def run_flash(self, *args, env=None, stdin="", path=None):
        full_env = {k: v for k, v in os.environ.items() if k not in ("FORCE", "YES")}
        full_env.update(env or {})
        full_env["FLASH_TEST_CALLS"] = self.calls
        if path is not None:
            full_env["PATH"] = path
        return subprocess.run(
            [FLASH, *args], input=stdin, capture_output=True, text=True, env=full_env, timeout=300
        )

    def run_guarded(self, *args, env=None, stdin=""):
        """For runs that must be refused: no real dd/bmaptool reachable."""
        return self.run_flash(*args, env=env, stdin=stdin, path=self.guard_bin)

    def assertRefused(self, res, *needles):
        out = res.stdout + res.stderr
        self.assertEqual(res.returncode, REFUSED, out)
        refusal = [line for line in res.stderr.splitlines() if line.startswith("flash: refusing: ")]
        self.assertEqual(len(refusal), 1, f"want exactly one refusal line:\n{out}")
        for n in needles:
            self.assertIn(n, refusal[0])
        self.assertNotIn("writing with", out)
        self.assertFalse(
            os.path.exists(self.calls),
            f"a write tool was called despite the refusal: {self._calls()}",
        )

    def _calls(self):
        return read_bytes(self.calls).decode() if os.path.exists(self.calls) else ""

    def assertWritten(self, res, dev, data, tool, junk_after=None):
        out = res.stdout + res.stderr
        self.assertEqual(res.returncode, 0, out)
        self.assertIn(f"flash: writing with {tool}\n", res.stdout)
        self.assertIn("flash: done: wrote ", res.stdout)
        got = read_bytes(dev)
        self.assertTrue(got[: len(data)] == data, "device bytes differ from the decompressed image")
        if junk_after is not None:
            self.assertTrue(got[len(data) :] == junk_after[len(data) :], "bytes past the image changed")

    # -- tests --------------------------------------------------------------------------------

    def test_missing_args_prints_usage(self):
        for args in ((), ("only-image.wic",), ("a.wic", "/dev/null", "extra")):
            with self.subTest(args=args):
                res = self.run_guarded(*args)
                self.assertEqual(res.returncode, REFUSED)
                self.assertIn("usage: flash.sh IMAGE DEVICE", res.stderr)
                self.assertFalse(os.path.exists(self.calls))

    def test_missing_image_refused(self):
        dev = self.loop(8 * MiB)
        res = self.run_guarded(os.path.join(self.tmp, "nope.wic.bz2"), dev, env={"FORCE": "1", "YES": "1"})
        self.assertRefused(res, "does not exist")

    def test_regular_file_as_device_refused(self):
        image, _ = self.image()
        target = os.path.join(self.tmp, "not-a-disk.img")
        before = _Rand("file").bytes(8 * MiB)
        with open(target, "wb") as f:
            f.write(before)
        res = self.run_guarded(image, target, env={"FORCE": "1", "YES": "1"})
        self.assertRefused(res, "not a block device", "regular file")
        self.assertTrue(read_bytes(target) == before, "the regular file was modified")

    def test_partition_refused_naming_the_disk(self):
        dev = self.loop(16 * MiB, junk=False, partscan=True)
        sh("sfdisk", "-q", dev, input="label: dos\nstart=2048, type=83\n")
        part = self.partition(dev)
        before = read_bytes(part)
        image, _ = self.image(size=2 * MiB)
        res = self.run_guarded(image, part, env={"FORCE": "1", "YES": "1"})
        self.assertRefused(res, "is a partition", f"pass the disk that holds it: {dev}")
        self.assertTrue(read_bytes(part) == before)

    def test_non_removable_needs_force(self):
        # Zeroed: bmaptool writes only the mapped blocks (see test_bmaptool_wic_bz2_with_bmap).
        dev = self.loop(8 * MiB, junk=False)
        before = read_bytes(dev)
        image, data = self.image(kind="bz2", bmap=True)
        res = self.run_guarded(image, dev, env={"YES": "1"})
        self.assertRefused(res, "not a removable disk", "FORCE=1")
        self.assertTrue(read_bytes(dev) == before)
        # The same run with FORCE=1 writes (real tools this time).
        res = self.run_flash(image, dev, env={"FORCE": "1", "YES": "1"})
        self.assertWritten(res, dev, data, "bmaptool")
        self.assertIn("allowed by FORCE=1", res.stdout)

    def test_bmaptool_wic_bz2_with_bmap(self):
        self.assertIsNotNone(shutil.which("bmaptool"), "bmaptool missing: apt-get install bmap-tools")
        # bmaptool writes only the mapped blocks, so on a zeroed card the result is the image.
        dev = self.loop(8 * MiB, junk=False)
        image, data = self.image(kind="bz2", bmap=True)
        res = self.run_flash(image, dev, env={"FORCE": "1", "YES": "1"})
        self.assertWritten(res, dev, data, "bmaptool")
        bmap = image[: -len(".bz2")] + ".bmap"
        self.assertIn(f"flash: tool:   bmaptool copy --bmap {bmap} {image} {dev}", res.stdout)
        self.assertIn("using bmap file", res.stderr)  # bmaptool's own report

    def test_bmaptool_plain_wic_without_bmap(self):
        self.assertIsNotNone(shutil.which("bmaptool"), "bmaptool missing: apt-get install bmap-tools")
        dev = self.loop(8 * MiB)
        junk = read_bytes(dev)
        image, data = self.image()
        res = self.run_flash(image, dev, env={"FORCE": "1", "YES": "1"})
        self.assertWritten(res, dev, data, "bmaptool", junk_after=junk)
        self.assertIn(f"flash: tool:   bmaptool copy --nobmap {image} {dev}", res.stdout)

    def test_dd_wic_bz2(self):
        # Over junk, so a skipped block shows; the bmap beside it only supplies the size.
        dev = self.loop(8 * MiB)
        junk = read_bytes(dev)
        image, data = self.image(kind="bz2", bmap=True)
        res = self.run_flash(image, dev, env={"FORCE": "1", "YES": "1"}, path=self.nobmap_bin)
        self.assertWritten(res, dev, data, "dd", junk_after=junk)
        self.assertIn("bzip2 -dc", res.stdout)
        self.assertIn("bmaptool not on PATH", res.stdout)

    def test_dd_plain_wic(self):
        dev = self.loop(8 * MiB)
        junk = read_bytes(dev)
        image, data = self.image()
        res = self.run_flash(image, dev, env={"FORCE": "1", "YES": "1"}, path=self.nobmap_bin)
        self.assertWritten(res, dev, data, "dd", junk_after=junk)
        self.assertIn(f"flash: tool:   dd if={image} of={dev}", res.stdout)

    def test_dd_gz_and_xz_without_bmap(self):
        for kind, tool in (("gz", "gzip"), ("xz", "xz")):
            with self.subTest(kind=kind):
                dev = self.loop(8 * MiB, name=f"disk-{kind}.bin")
                junk = read_bytes(dev)
                image, data = self.image(kind=kind, seed=kind)
                res = self.run_flash(image, dev, env={"FORCE": "1", "YES": "1"}, path=self.nobmap_bin)
                self.assertWritten(res, dev, data, "dd", junk_after=junk)
                self.assertIn(f"{tool} -dc {image} | dd of={dev}", res.stdout)

    def test_symlink_to_device_is_resolved(self):
        dev = self.loop(8 * MiB)
        link = os.path.join(self.tmp, "usb-Generic_SD_Reader-0:0")
        os.symlink(dev, link)
        image, data = self.image(kind="bz2")
        res = self.run_flash(image, link, env={"FORCE": "1", "YES": "1"}, path=self.nobmap_bin)
        self.assertWritten(res, dev, data, "dd")
        self.assertIn(f"flash: device: {dev} (from {link})", res.stdout)

    def test_mounted_refused_even_with_force(self):
        dev = self.loop(16 * MiB, junk=False)
        sh("mkfs.ext4", "-q", "-F", dev)
        mnt = self.mount(dev)
        with open(os.path.join(mnt, "marker"), "w") as f:
            f.write("still here\n")
        image, _ = self.image(kind="bz2", bmap=True)
        res = self.run_guarded(image, dev, env={"FORCE": "1", "YES": "1"})
        self.assertRefused(res, "in use", f"is mounted on {mnt}")
        self._umount(mnt)
        again = self.mount(dev)
        self.assertEqual(read_bytes(os.path.join(again, "marker")), b"still here\n")

    def test_mounted_partition_refuses_whole_disk(self):
        dev = self.loop(24 * MiB, junk=False, partscan=True)
        sh("sfdisk", "-q", dev, input="label: dos\nstart=2048, type=83\n")
        part = self.partition(dev)
        sh("mkfs.ext4", "-q", "-F", part)
        mnt = self.mount(part)
        with open(os.path.join(mnt, "marker"), "w") as f:
            f.write("still here\n")
        image, _ = self.image()
        res = self.run_guarded(image, dev, env={"FORCE": "1", "YES": "1"})
        self.assertRefused(res, f"{part} is mounted on {mnt}")
        self._umount(mnt)
        again = self.mount(part)
        self.assertEqual(read_bytes(os.path.join(again, "marker")), b"still here\n")

    def test_active_swap_refused(self):
        dev = self.loop(8 * MiB, junk=False)
        sh("mkswap", dev)
        sh("swapon", dev)
        self.addCleanup(sh, "swapoff", dev)
        before = read_bytes(dev)
        image, _ = self.image(size=2 * MiB)
        res = self.run_guarded(image, dev, env={"FORCE": "1", "YES": "1"})
        self.assertRefused(res, "active swap")
        self.assertTrue(read_bytes(dev) == before)

    def test_root_disk_refused_even_with_force(self):
        # Found the way a user would: the source of /, then its parents up to the disk.
        src = sh("findmnt", "-n", "-o", "SOURCE", "/").strip().split("[", 1)[0]
        if not (os.path.exists(src) and stat.S_ISBLK(os.stat(src).st_mode)):
            self.skipTest(f"/ is on {src!r}, not a block device (container root): no root disk to refuse")
        disk = src
        while True:
            parent = sh("lsblk", "-ndo", "PKNAME", disk).strip()
            if not parent:
                break
            disk = f"/dev/{parent}"
        self.assertTrue(stat.S_ISBLK(os.stat(disk).st_mode), disk)
        image, _ = self.image(size=MiB)
        # Guarded: the only dd/bmaptool on PATH are the recording fakes, so even a broken
        # refusal cannot write to this machine's disk.
        res = self.run_guarded(image, disk, env={"FORCE": "1", "YES": "1"})
        self.assertRefused(res, f"{disk} holds the root filesystem")

    def test_confirmation(self):
        dev = self.loop(8 * MiB)
        before = read_bytes(dev)
        image, data = self.image(kind="bz2", bmap=True)
        for answer in ("no\n", "", "YES\n", "y\n", "yes please\n"):
            with self.subTest(answer=answer):
                res = self.run_guarded(image, dev, env={"FORCE": "1"}, stdin=answer)
                self.assertEqual(res.returncode, ABORTED, res.stdout + res.stderr)
                self.assertIn(f"Type yes to overwrite {dev}:", res.stdout)
                self.assertIn("aborted, nothing written", res.stdout)
                self.assertFalse(os.path.exists(self.calls), self._calls())
                self.assertTrue(read_bytes(dev) == before)
        res = self.run_flash(image, dev, env={"FORCE": "1"}, stdin="yes\n", path=self.nobmap_bin)
        self.assertIn(f"Type yes to overwrite {dev}:", res.stdout)
        self.assertWritten(res, dev, data, "dd", junk_after=before)

    def test_summary_before_writing(self):
        dev = self.loop(8 * MiB)
        image, _ = self.image(kind="bz2", bmap=True)
        res = self.run_guarded(image, dev, env={"FORCE": "1"}, stdin="no\n")
        self.assertEqual(res.returncode, ABORTED)
        for needle in (f"flash: device: {dev}", "flash: size:   8.0 MiB (8388608 bytes)", "flash: model:  ",
                       f"flash: image:  {image} (6.0 MiB uncompressed", "flash: tool:   bmaptool copy --bmap"):
            self.assertIn(needle, res.stdout)

    def test_image_larger_than_device_refused(self):
        dev = self.loop(4 * MiB)
        before = read_bytes(dev)
        cases = (
            ("plain .wic", {}),
            (".wic.bz2 with bmap (size from the bmap)", {"kind": "bz2", "bmap": True}),
            (".wic.bz2 without bmap (size measured)", {"kind": "bz2"}),
            (".wic.xz (size from the xz index)", {"kind": "xz"}),
        )
        for label, kw in cases:
            with self.subTest(label):
                for f in os.listdir(self.tmp):
                    if f.startswith("tmc-image"):
                        os.unlink(os.path.join(self.tmp, f))
                image, _ = self.image(size=6 * MiB, **kw)
                res = self.run_guarded(image, dev, env={"FORCE": "1", "YES": "1"})
                self.assertRefused(res, "larger than", "6291456 bytes", "4194304")
                self.assertTrue(read_bytes(dev) == before)

    def test_read_only_device_refused(self):
        dev = self.loop(8 * MiB, read_only=True)
        image, _ = self.image()
        res = self.run_guarded(image, dev, env={"FORCE": "1", "YES": "1"})
        self.assertRefused(res, "read-only")

    def test_unknown_image_type_refused(self):
        dev = self.loop(8 * MiB)
        tarball = os.path.join(self.tmp, "rootfs.tar.bz2")
        with open(tarball, "wb") as f:
            f.write(b"x")
        res = self.run_guarded(tarball, dev, env={"FORCE": "1", "YES": "1"})
        self.assertRefused(res, "not a .wic/.img image")


if __name__ == "__main__":
    unittest.main()
