"""docs/architecture.md lists every workspace crate once, each after the crates it depends on."""

import pathlib
import re
import tomllib
import unittest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def listed_crates():
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## The crates, in dependency order", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z0-9-]+)` \|", section, re.MULTILINE)


def workspace_crates():
    """Each member's name and the members it depends on (normal dependencies)."""
    crates = {}
    for manifest in sorted(ROOT.glob("crates/*/Cargo.toml")):
        data = tomllib.loads(manifest.read_text())
        crates[data["package"]["name"]] = set(data.get("dependencies", {}))
    return {name: deps & crates.keys() for name, deps in crates.items()}


class ArchitectureDoc(unittest.TestCase):
    def test_every_crate_is_listed_once(self):
        listed = listed_crates()
        self.assertEqual(len(listed), len(set(listed)), f"listed twice: {listed}")
        self.assertEqual(set(listed), set(workspace_crates()))

    def test_crates_come_after_their_dependencies(self):
        position = {name: i for i, name in enumerate(listed_crates())}
        for name, deps in workspace_crates().items():
            for dep in deps:
                self.assertLess(
                    position[dep], position[name], f"{name} depends on {dep}, listed after it"
                )


if __name__ == "__main__":
    unittest.main()
