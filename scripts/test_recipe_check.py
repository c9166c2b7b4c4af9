"""Tests for scripts/recipe-check.py: the recipe's offline build refuses a crate list that does not match
Cargo.lock, naming the crate. The passing case with the build is `make recipe-check` itself."""
import os
import re
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "recipe-check.py")
INC = os.path.join(HERE, "..", "meta-tmc", "recipes-tmc", "tmc", "tmc-crates.inc")


def without_crate(text, name, version):
    """The .inc without one crate's SRC_URI line and checksum."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if f"crate://crates.io/{name}/{version}" not in line
                   and f"[{name}-{version}.sha256sum]" not in line)


class RecipeCheck(unittest.TestCase):
    def setUp(self):
        with open(INC, encoding="utf-8") as f:
            self.inc = f.read()
        self.name, self.version = re.search(r"crate://crates\.io/([^/\s]+)/([^\s\\]+)", self.inc).groups()

    def run_check(self, inc_text):
        with tempfile.TemporaryDirectory() as tmp:
            inc = os.path.join(tmp, "tmc-crates.inc")
            with open(inc, "w", encoding="utf-8") as f:
                f.write(inc_text)
            return subprocess.run([sys.executable, SCRIPT, "--resolve-only", "--inc", inc,
                                   "--work", os.path.join(tmp, "work")],
                                  capture_output=True, text=True)

    def test_a_crate_missing_from_the_list_fails_with_its_name(self):
        out = self.run_check(without_crate(self.inc, self.name, self.version))
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn(f"crate {self.name} (in Cargo.lock) is missing from tmc-crates.inc", out.stderr)

    def test_a_checksum_that_is_not_the_registry_files_fails_with_the_crate(self):
        key = f"[{self.name}-{self.version}.sha256sum]"
        wrong = re.sub(re.escape(key) + r'(\s*=\s*)"[0-9a-f]{64}"', lambda m: key + m.group(1) + '"' + "0" * 64 + '"',
                       self.inc)
        self.assertNotEqual(wrong, self.inc)
        out = self.run_check(wrong)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn(f"crate {self.name} {self.version}: sha256", out.stderr)
        self.assertIn("tmc-crates.inc says " + "0" * 64, out.stderr)


if __name__ == "__main__":
    unittest.main()
