#!/usr/bin/env python3
"""The recipe's Rust build, offline, the way bitbake's cargo class runs it (`make recipe-check`).

1. The crates `tmc-crates.inc` lists (`crate://crates.io/NAME/VERSION` and their `sha256sum`) are taken from
   the crate registry (through cargo's download cache: `cargo fetch --locked`), checked against the .inc's
   checksums, and unpacked as bitbake's crate fetcher does: `cargo_home/bitbake/NAME-VERSION/` with a
   `.cargo-checksum.json` of `{"files": {}, "package": "<sha256 of the .crate>"}`. Only those: a crate the
   .inc does not list is not there.
2. `cargo_home/config.toml` as `cargo_common_do_configure` writes it: the `bitbake` directory source
   replacing crates.io (`local-registry = "/nonexistent"`), the out-of-tree target directory, the aarch64
   linker.
3. `cargo metadata --frozen` resolves the workspace against that directory only: a crate missing from the
   .inc fails here, named.
4. Unless `--resolve-only`: `cargo build -v --frozen --target aarch64-unknown-linux-gnu --profile=release`
   with the recipe's `TMC_FEATURE_FLAGS` and its `TMC_BINARIES` as `-p` flags (its CARGO_BUILD_FLAGS) and
   `CARGO_PROFILE_RELEASE_STRIP=false` (its export), with Debian's rustc; then every binary must exist.

Exit status 0 when all of it passed, 1 with one `recipe-check: ...` line naming the problem otherwise.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECIPE_DIR = REPO / "meta-tmc" / "recipes-tmc" / "tmc"
TARGET = "aarch64-unknown-linux-gnu"


class CheckError(Exception):
    pass


def read_inc(path):
    """(name, version) -> sha256 for every crate the .inc lists."""
    text = path.read_text(encoding="utf-8")
    crates = re.findall(r"crate://crates\.io/([^/\s]+)/([^\s\\]+)", text)
    sums = dict(re.findall(r'SRC_URI\[([^\]]+)\.sha256sum\]\s*=\s*"([0-9a-f]{64})"', text))
    listed = {}
    for name, version in crates:
        key = f"{name}-{version}"
        if key not in sums:
            raise CheckError(f"{path.name}: crate {name} {version} has no sha256sum")
        listed[(name, version)] = sums[key]
    if not listed:
        raise CheckError(f"{path}: no crate:// entries")
    return listed


def recipe_words(path, variable):
    """The words of `VARIABLE = "..."` in the recipe."""
    match = re.search(rf'^{variable}\s*=\s*"([^"]*)"', path.read_text(encoding="utf-8"), re.M)
    if not match:
        raise CheckError(f"{path.name}: no {variable}")
    return match.group(1).split()


def recipe_binaries(path):
    return recipe_words(path, "TMC_BINARIES")


def cargo_home():
    return Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))


def run(cmd, env=None, what=""):
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise CheckError(f"{what or cmd[0]} failed:\n{out.stderr.strip()[-4000:]}")
    return out


def fetch(cargo):
    """The registry's .crate files in cargo's download cache (a no-op when they are there)."""
    run([cargo, "fetch", "--locked", "--manifest-path", str(REPO / "Cargo.toml")], what="cargo fetch --locked")


def crate_file(name, version):
    for cache in sorted((cargo_home() / "registry" / "cache").glob("*")):
        candidate = cache / f"{name}-{version}.crate"
        if candidate.is_file():
            return candidate
    raise CheckError(f"crate {name} {version} is listed in tmc-crates.inc but not in the registry download "
                     f"(is it in Cargo.lock?)")


def vendor(listed, vendor_dir):
    """Unpacks exactly the listed crates as bitbake's crate fetcher does."""
    if vendor_dir.exists():
        shutil.rmtree(vendor_dir)
    vendor_dir.mkdir(parents=True)
    for (name, version), want in sorted(listed.items()):
        path = crate_file(name, version)
        got = hashlib.sha256(path.read_bytes()).hexdigest()
        if got != want:
            raise CheckError(f"crate {name} {version}: sha256 {got} of the registry's file, "
                             f"tmc-crates.inc says {want}")
        with tarfile.open(path, "r:gz") as tar:
            tar.extractall(vendor_dir)
        unpacked = vendor_dir / f"{name}-{version}"
        if not unpacked.is_dir():
            raise CheckError(f"crate {name} {version}: the archive has no {unpacked.name}/")
        (unpacked / ".cargo-checksum.json").write_text(json.dumps({"files": {}, "package": got}))


def write_config(home, vendor_dir, target_dir, linker):
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        "# As bitbake's cargo_common_do_configure writes it.\n"
        "[source.bitbake]\n"
        f'directory = "{vendor_dir}"\n\n'
        "[source.crates-io]\n"
        'replace-with = "bitbake"\n'
        'local-registry = "/nonexistent"\n\n'
        "[build]\n"
        f'target-dir = "{target_dir}"\n\n'
        f"[target.{TARGET}]\n"
        f'linker = "{linker}"\n',
        encoding="utf-8",
    )


def resolve(cargo, env):
    out = subprocess.run([cargo, "metadata", "--frozen", "--format-version", "1",
                          "--manifest-path", str(REPO / "Cargo.toml")],
                         env=env, capture_output=True, text=True)
    if out.returncode != 0:
        missing = re.search(r"no matching package named `([^`]+)` found", out.stderr)
        if missing:
            raise CheckError(f"crate {missing.group(1)} (in Cargo.lock) is missing from tmc-crates.inc: "
                             f"the recipe cannot build offline (run `make crates-inc`)")
        raise CheckError(f"cargo metadata --frozen against the vendored crates failed:\n{out.stderr.strip()[-4000:]}")


def build(cargo, env, binaries, feature_flags, target_dir):
    flags = ["-v", "--frozen", "--target", TARGET, "--profile=release",
             f"--manifest-path={REPO / 'Cargo.toml'}", *feature_flags]
    for b in binaries:
        flags += ["-p", b]
    run([cargo, "build", *flags], env=env, what="cargo build (the recipe's flags)")
    made = []
    for b in binaries:
        path = target_dir / TARGET / "release" / b
        if not path.is_file():
            raise CheckError(f"{b} was not built ({path})")
        made.append(f"{b} {path.stat().st_size // 1024} KiB")
    return made


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inc", type=Path, default=RECIPE_DIR / "tmc-crates.inc")
    parser.add_argument("--recipe", type=Path, default=RECIPE_DIR / "tmc_git.bb")
    parser.add_argument("--work", type=Path, default=REPO / "target" / "recipe-check")
    parser.add_argument("--resolve-only", action="store_true", help="vendor and resolve, do not build")
    parser.add_argument("--cargo", default=os.environ.get("RECIPE_CARGO", "/usr/bin/cargo"))
    parser.add_argument("--rustc", default=os.environ.get("RECIPE_RUSTC", "/usr/bin/rustc"))
    parser.add_argument("--linker", default="aarch64-linux-gnu-gcc")
    args = parser.parse_args()
    work = args.work.resolve()
    try:
        listed = read_inc(args.inc)
        binaries = recipe_binaries(args.recipe)
        feature_flags = recipe_words(args.recipe, "TMC_FEATURE_FLAGS")
        fetch(args.cargo)
        home, vendor_dir, target_dir = work / "cargo_home", work / "cargo_home" / "bitbake", work / "target"
        vendor(listed, vendor_dir)
        write_config(home, vendor_dir, target_dir, args.linker)
        env = dict(os.environ, CARGO_HOME=str(home), RUSTC=args.rustc, CARGO_PROFILE_RELEASE_STRIP="false")
        env.pop("CARGO_TARGET_DIR", None)
        resolve(args.cargo, env)
        print(f"recipe-check: {len(listed)} crates from tmc-crates.inc vendored as bitbake does; "
              f"the workspace resolves against them alone (--frozen)", flush=True)
        if not args.resolve_only:
            made = build(args.cargo, env, binaries, feature_flags, target_dir)
            print(f"recipe-check: built offline for {TARGET} with the recipe's flags: {', '.join(made)}")
    except CheckError as e:
        print(f"recipe-check: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
