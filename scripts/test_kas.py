"""The kas project files of meta-tmc: valid for kas, one per supported machine, layers pinned to wrynose.

Run with the lint virtualenv's Python (it has kas): `make test-scripts`.
"""
import json
import os
import re
import unittest
from importlib import resources

import jsonschema
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KAS_DIR = os.path.join(ROOT, "meta-tmc", "kas")
MACHINES = {"raspberrypi4-64", "raspberrypi3-64", "raspberrypi5"}
# The layers and the branch of each that is Yocto 6.0 "wrynose" (bitbake has its own numbering).
BRANCHES = {
    "bitbake": "2.18",
    "openembedded-core": "wrynose",
    "meta-yocto": "wrynose",
    "meta-openembedded": "wrynose",
    "meta-raspberrypi": "wrynose",
}
# Where the parse check (../shared/yocto-check) pins the same layers, when it is beside the repository.
PARSE_LOCK = os.path.join(ROOT, "..", "shared", "yocto-check", "sources-wrynose.lock")


def load(name):
    with open(os.path.join(KAS_DIR, name), encoding="utf-8") as f:
        return yaml.safe_load(f)


class KasFiles(unittest.TestCase):
    def setUp(self):
        schema = json.loads(resources.files("kas").joinpath("schema-kas.json").read_text())
        self.validator = jsonschema.Draft7Validator(schema)
        self.files = sorted(f for f in os.listdir(KAS_DIR) if f.endswith(".yml"))
        self.common = load("tmc-common.yml")

    def test_every_file_is_valid_for_kas(self):
        for name in self.files:
            errors = [e.message for e in self.validator.iter_errors(load(name))]
            self.assertEqual(errors, [], name)

    def test_one_file_per_supported_machine_including_the_common_one(self):
        machines = {}
        for name in self.files:
            config = load(name)
            if "machine" in config:
                machines[config["machine"]] = name
                self.assertEqual(name, "tmc-%s.yml" % config["machine"])
                self.assertEqual(config["header"]["includes"], ["meta-tmc/kas/tmc-common.yml"], name)
        self.assertEqual(set(machines), MACHINES)

    def test_layers_are_pinned_to_wrynose_commits(self):
        repos = self.common["repos"]
        for name, branch in BRANCHES.items():
            repo = repos[name]
            self.assertEqual(repo["branch"], branch, name)
            self.assertRegex(repo["commit"], r"^[0-9a-f]{40}$", name)
            self.assertTrue(repo["url"].startswith("https://"), name)
        self.assertEqual(set(repos["meta-openembedded"]["layers"]), {"meta-oe", "meta-python", "meta-networking"})
        self.assertEqual(set(repos["tmc"]["layers"]), {"meta-tmc"})
        with open(os.path.join(ROOT, "meta-tmc", "conf", "layer.conf"), encoding="utf-8") as f:
            layer_conf = f.read()
        self.assertRegex(layer_conf, r'(?m)^LAYERSERIES_COMPAT_tmc = "wrynose"$')

    @unittest.skipUnless(os.path.exists(PARSE_LOCK), "no ../shared/yocto-check beside the repository")
    def test_pins_are_the_commits_the_parse_check_uses(self):
        pins = {}
        with open(PARSE_LOCK, encoding="utf-8") as f:
            for line in f:
                fields = line.split()
                if fields and not fields[0].startswith("#"):
                    pins[fields[0]] = (fields[2], fields[3])
        for name in BRANCHES:
            repo = self.common["repos"][name]
            self.assertEqual((repo["branch"], repo["commit"]), pins[name], name)

    def test_settings_come_from_the_layer_conf_file(self):
        header = self.common["local_conf_header"]["tmc"]
        self.assertIn("require conf/tmc-local.conf", header)
        self.assertTrue(os.path.isfile(os.path.join(ROOT, "meta-tmc", "conf", "tmc-local.conf")))

    def test_local_checkout_overlay_builds_the_working_tree(self):
        overlay = load("tmc-local-checkout.yml")
        self.assertIn("TMC_CHECKOUT", overlay["env"])
        header = "".join(overlay["local_conf_header"].values())
        self.assertIn('INHERIT += "externalsrc"', header)
        self.assertRegex(header, re.escape('EXTERNALSRC:pn-tmc = "${TMC_CHECKOUT}"'))


if __name__ == "__main__":
    unittest.main()
