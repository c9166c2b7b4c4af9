"""Tests for scripts/crates-inc.py (python3 -m unittest discover -s scripts -p 'test_crates_inc.py')."""
import importlib.util
import os
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("crates_inc", os.path.join(HERE, "crates-inc.py"))
crates_inc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(crates_inc)

LOCK = b'''version = 4

[[package]]
name = "zeta"
version = "1.10.0"
source = "registry+https://example.invalid/index"
checksum = "bb"

[[package]]
name = "zeta"
version = "1.9.2"
source = "registry+https://example.invalid/index"
checksum = "aa"

[[package]]
name = "alpha"
version = "0.1.0"
source = "registry+https://example.invalid/index"
checksum = "cc"

[[package]]
name = "local-crate"
version = "0.1.0"
'''


class CratesInc(unittest.TestCase):
    def write(self, data):
        fd, path = tempfile.mkstemp(suffix=".lock")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        self.addCleanup(os.unlink, path)
        return path

    def test_sorted_registry_only(self):
        path = self.write(LOCK)
        out = path + ".inc"
        self.addCleanup(lambda: os.path.exists(out) and os.unlink(out))
        self.assertEqual(crates_inc.main(["--lock", path, "--out", out]), 0)
        text = open(out, encoding="utf-8").read()
        uris = [l.strip() for l in text.splitlines() if "crate://" in l]
        self.assertEqual(uris, ["crate://crates.io/alpha/0.1.0 \\", "crate://crates.io/zeta/1.9.2 \\",
                                "crate://crates.io/zeta/1.10.0 \\"])
        self.assertIn('SRC_URI[zeta-1.10.0.sha256sum] = "bb"', text)
        self.assertNotIn("local-crate", text)
        # deterministic, and --check agrees with what was written
        self.assertEqual(crates_inc.render(crates_inc.registry_packages(crates_inc.tomllib.loads(LOCK.decode()))), text)
        self.assertEqual(crates_inc.main(["--lock", path, "--out", out, "--check"]), 0)

    def test_check_fails_when_out_of_sync(self):
        path = self.write(LOCK)
        out = path + ".inc"
        self.addCleanup(lambda: os.path.exists(out) and os.unlink(out))
        crates_inc.main(["--lock", path, "--out", out])
        with open(out, "a", encoding="utf-8") as f:
            f.write('SRC_URI[extra-1.0.0.sha256sum] = "00"\n')
        self.assertEqual(crates_inc.main(["--lock", path, "--out", out, "--check"]), 1)

    def test_workspace_inc_is_current(self):
        self.assertEqual(crates_inc.main(["--check"]), 0)

    def test_missing_checksum_is_an_error(self):
        path = self.write(LOCK.replace(b'checksum = "cc"\n', b""))
        with self.assertRaises(SystemExit):
            crates_inc.main(["--lock", path, "--out", "-"])


if __name__ == "__main__":
    unittest.main()
