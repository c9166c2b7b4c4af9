"""What goes on the image comes from one place: tmc_git.bb's do_install runs meta-tmc's tmc-install.sh, and the
VM image builder (scripts/vm/vmlib.py) runs the same script and reads the recipe's users, groups and enabled
units. These tests fail when the recipe and the script drift apart."""

import os
import re
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "vm"))
import vmlib  # noqa: E402

RECIPE_TEXT = vmlib.RECIPE.read_text()


def do_install_body() -> str:
    m = re.search(r"^do_install\(\) \{\n(.*?)^\}", RECIPE_TEXT, re.M | re.S)
    assert m, "tmc_git.bb has no do_install"
    return m.group(1)


def fetched_files() -> list:
    return re.findall(r"file://([^\s;\"\\]+)", vmlib.recipe_var(RECIPE_TEXT, "SRC_URI"))


def install_into(dest: Path) -> Path:
    """Runs tmc-install.sh as do_install does, with only the files the recipe fetches beside it."""
    unpack = dest.parent / "unpack"
    unpack.mkdir()
    for name in fetched_files():
        (unpack / name).write_bytes((vmlib.RECIPE_FILES / name).read_bytes())
    build = dest.parent / "build"
    build.mkdir()
    for b in vmlib.recipe_binaries():
        (build / b).write_text("#!/bin/sh\n")
    env = dict(os.environ, **vmlib.OE_PATHS, TMC_GROUP=str(os.getgid()))
    subprocess.run(["sh", str(unpack / "tmc-install.sh"), str(dest), str(build), str(unpack),
                    *vmlib.recipe_binaries()], check=True, env=env, capture_output=True)
    return dest


class ImageInstall(unittest.TestCase):
    def test_do_install_is_the_install_script(self):
        body = do_install_body()
        self.assertIn("tmc-install.sh ${D} ${B}/target/${CARGO_TARGET_SUBDIR} ${UNPACKDIR} ${TMC_BINARIES}", body)
        for line in body.splitlines():
            self.assertNotRegex(line.strip(), r"^(install|chown|chmod|sed|cp|mkdir)\b",
                                f"do_install installs beside tmc-install.sh: {line.strip()!r}")
        self.assertIn("tmc-install.sh", fetched_files())

    @unittest.skipUnless(os.geteuid() == 0, "tmc-install.sh chowns /etc/tmc to root")
    def test_the_script_needs_only_what_the_recipe_fetches_and_installs_what_it_packages(self):
        with tempfile.TemporaryDirectory() as tmp:
            dest = install_into(Path(tmp) / "image")
            installed = {"/" + str(p.relative_to(dest)) for p in dest.rglob("*")}
            for b in vmlib.recipe_binaries():
                self.assertIn(f"/usr/bin/{b}", installed)
                self.assertEqual((dest / "usr/bin" / b).stat().st_mode & 0o777, 0o755)
            for units in vmlib.recipe_units().values():
                for unit in units:
                    path = dest / "usr/lib/systemd/system" / unit
                    self.assertTrue(path.is_file(), f"SYSTEMD_SERVICE names {unit}, not installed")
                    self.assertNotIn("@BINDIR@", path.read_text())
            for m in re.finditer(r'^FILES:\$\{PN\}-[a-z]+\s*\+=\s*"([^"]*)"', RECIPE_TEXT, re.M):
                for entry in m.group(1).split():
                    path = entry
                    for var, value in vmlib.OE_VARS.items():
                        path = path.replace("${" + var + "}", value)
                    self.assertIn(path, installed, f"FILES names {entry}, not installed")
            self.assertIn("/usr/lib/udev/rules.d/60-tmc.rules", installed)
            etc = dest / "etc/tmc"
            self.assertEqual(etc.stat().st_mode & 0o777, 0o750)
            self.assertEqual(etc.stat().st_gid, os.getgid())

    def test_the_vm_builder_takes_accounts_and_enabled_units_from_the_recipe(self):
        groups, users = vmlib.recipe_accounts()
        self.assertEqual([g[-1] for g in groups], ["spi", "gpio", "i2c"])
        self.assertEqual(users[0][-1], "tmc")
        self.assertIn("/var/lib/tmc", users[0], "${localstatedir} expanded")
        self.assertEqual(vmlib.recipe_enabled_units(), ["tmc-firstboot.service"])
        self.assertTrue((vmlib.RECIPE_FILES / "tmc-install.sh").is_file())


if __name__ == "__main__":
    unittest.main()
