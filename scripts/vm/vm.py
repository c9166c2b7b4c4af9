#!/usr/bin/env python3
"""make vm: one TMC board as a VM on this terminal's serial console, to look around.

A throwaway site (tmc-pki), the board's FAT boot partition provisioned for ROLE by `tmc-provision write`, the
root file system with the project installed as the recipe installs it, first boot under systemd. Log in as root
(no password); Ctrl-A X quits QEMU. The VM has no network device; a concentrator has its access point on a
simulated radio (mac80211_hwsim, two radios: wlan1 is free for a station of your own).

    scripts/vm/vm.py --arch arm64 --role concentrator|gateway --binaries DIR --host-binaries DIR [--work DIR]
"""

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vmlib  # noqa: E402


def main() -> int:
    ap = vmlib.vm_arguments(__doc__, "target/vm")
    ap.add_argument("--role", choices=["concentrator", "gateway"], default="concentrator")
    args = ap.parse_args()
    work = vmlib.fresh_work_dir("vm", args.work)
    rootfs = vmlib.Rootfs.cached(args.arch)
    site, _, _ = vmlib.make_site(work, args.host_binaries, [])
    name = "conc1" if args.role == "concentrator" else "gw1"
    config = work / "board.toml"
    config.write_text(vmlib.vm_config(vmlib.rendered_config(work, args.host_binaries, site, args.role, name)))
    vm = vmlib.prepare_vm(rootfs, args.role, name, site, config, work, args.binaries, args.host_binaries,
                          work / "share", sensors=True, test=False)
    print(f"vm: {args.role} {name} ({args.arch}); site in {site}; log in as root, Ctrl-A X quits", flush=True)
    return subprocess.call(vm.command(interactive=True))


if __name__ == "__main__":
    sys.exit(main())
