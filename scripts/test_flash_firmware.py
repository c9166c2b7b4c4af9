#!/usr/bin/env python3
"""Behaviour tests for scripts/flash-firmware.sh (`make flash-firmware PORT=...`).

The port is a real pseudo-terminal (a character device, like a USB serial port) and esptool is a
fake that records its arguments: the tests check what would be sent to the board and that every
refusal sends nothing. Run from the worktree root:

    python3 -m unittest discover -s scripts -p 'test_flash_firmware.py' -v
"""

import os
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "flash-firmware.sh")
REFUSED = 2

FAKE_ESPTOOL = """#!/bin/sh
printf '%s\\n' "$@" > "$(dirname "$0")/esptool.args"
exit "${FAKE_ESPTOOL_EXIT:-0}"
"""


class FlashFirmwareTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmc-flash-fw-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.dir], check=True)
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        self.port = os.ttyname(slave)
        self.esptool = os.path.join(self.dir, "esptool")
        with open(self.esptool, "w") as f:
            f.write(FAKE_ESPTOOL)
        os.chmod(self.esptool, 0o755)
        self.args_file = os.path.join(self.dir, "esptool.args")
        self.prefix = os.path.join(self.dir, "sensor-")

    def image(self, address, size=1000):
        path = f"{self.prefix}{address}.bin"
        with open(path, "wb") as f:
            f.write(b"\xe9" * size)
        return path

    def run_script(self, *args, **env):
        environment = {**os.environ, "ESPTOOL": self.esptool, **env}
        return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, env=environment)

    def flash(self, **env):
        return self.run_script(self.port, self.prefix, **env)

    def esptool_args(self):
        with open(self.args_file) as f:
            return f.read().splitlines()

    def assert_refused(self, res, message):
        self.assertEqual(res.returncode, REFUSED, res.stderr)
        self.assertIn("flash-firmware: refusing: ", res.stderr)
        self.assertIn(message, res.stderr)
        self.assertFalse(os.path.exists(self.args_file), "esptool ran although the script refused")

    def test_writes_every_image_at_the_address_in_its_name(self):
        irom = self.image("0x10000", 70000)
        iram = self.image("0x00000", 2000)
        res = self.flash()
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(
            self.esptool_args(),
            ["--chip", "esp8266", "--port", self.port, "--baud", "460800", "write-flash",
             "--flash-mode", "keep", "0x00000", iram, "0x10000", irom],
        )
        self.assertIn("0x10000  70000 bytes", res.stdout)

    def test_baud_and_flash_mode_are_passed_on(self):
        self.image("0x00000")
        res = self.flash(BAUD="115200", FLASH_MODE="dio")
        self.assertEqual(res.returncode, 0, res.stderr)
        args = self.esptool_args()
        self.assertEqual(args[args.index("--baud") + 1], "115200")
        self.assertEqual(args[args.index("--flash-mode") + 1], "dio")

    def test_erase_writes_the_whole_chip_first(self):
        self.image("0x00000")
        self.image("0x3fc000", 128)
        res = self.flash(ERASE="1")
        self.assertEqual(res.returncode, 0, res.stderr)
        args = self.esptool_args()
        self.assertEqual(args[args.index("write-flash") + 1], "--erase-all")
        self.assertEqual(args[-2:], ["0x3fc000", self.prefix + "0x3fc000.bin"])
        self.assertNotIn("--erase-all", self.esptool_args_without_erase())

    def esptool_args_without_erase(self):
        os.remove(self.args_file)
        res = self.flash()
        self.assertEqual(res.returncode, 0, res.stderr)
        return self.esptool_args()

    def test_esptool_failure_is_exit_1_with_a_hint(self):
        self.image("0x00000")
        res = self.flash(FAKE_ESPTOOL_EXIT="2")
        self.assertEqual(res.returncode, 1)
        self.assertIn("esptool failed", res.stderr)

    def test_refuses_without_images(self):
        self.assert_refused(self.flash(), "run make firmware first")

    def test_refuses_a_missing_port(self):
        self.image("0x00000")
        res = self.run_script(os.path.join(self.dir, "ttyUSB9"), self.prefix)
        self.assert_refused(res, "does not exist")

    def test_refuses_a_port_that_is_not_a_character_device(self):
        self.image("0x00000")
        res = self.run_script(self.prefix + "0x00000.bin", self.prefix)
        self.assert_refused(res, "is not a serial port")

    def test_refuses_a_block_device_port(self):
        block = next((f"/dev/{d}" for d in ("loop0", "vda", "sda") if os.path.exists(f"/dev/{d}")), None)
        if block is None:
            self.skipTest("no block device node to point at")
        self.image("0x00000")
        self.assert_refused(self.run_script(block, self.prefix), "is not a serial port")

    def test_refuses_an_address_off_a_flash_sector(self):
        self.image("0x10001")
        self.assert_refused(self.flash(), "is not on a 4 KiB flash sector")

    def test_refuses_overlapping_images(self):
        self.image("0x00000", 0x10001)
        self.image("0x10000")
        self.assert_refused(self.flash(), "overlaps")

    def test_refuses_a_name_that_is_not_an_address(self):
        self.image("0x10000-old")
        self.assert_refused(self.flash(), "is not a hex address")

    def test_refuses_an_empty_image(self):
        self.image("0x00000", 0)
        self.assert_refused(self.flash(), "is empty")

    def test_refuses_a_bad_baud_or_flash_mode(self):
        self.image("0x00000")
        self.assert_refused(self.flash(BAUD="fast"), "BAUD=fast is not a number")
        self.assert_refused(self.flash(FLASH_MODE="quad"), "FLASH_MODE=quad")
        self.assert_refused(self.flash(ERASE="yes"), "ERASE=yes: expected 0 or 1")

    def test_refuses_a_missing_esptool(self):
        self.image("0x00000")
        res = self.flash(ESPTOOL=os.path.join(self.dir, "no-esptool"))
        self.assert_refused(res, "esptool not found")

    def test_usage_without_a_port(self):
        res = self.run_script()
        self.assertEqual(res.returncode, REFUSED)
        self.assertIn("usage: flash-firmware.sh PORT", res.stderr)


if __name__ == "__main__":
    unittest.main()
