"""Building and booting the TMC test VMs: a Debian root file system with the project installed as the recipe
installs it (meta-tmc's tmc-install.sh and the recipe's users and groups), a FAT boot partition written by
`tmc-provision write`, the rootfs' own kernel with a small initramfs, and QEMU under TCG.

Used by vm-test.py (make vm-test) and vm.py (make vm). Python standard library only; needs root (loop mounts of
the FAT image, files owned by the image's users).
"""

from __future__ import annotations

import argparse
import gzip
import secrets
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "meta-tmc/recipes-tmc/tmc/tmc_git.bb"
RECIPE_FILES = REPO / "meta-tmc/recipes-tmc/tmc/files"
GUEST = Path(__file__).resolve().parent / "guest"
BOARD = REPO / "board-config/dragino-lora-hat.toml"
# A VM has no radio: the relay and the receiver join this air directory, which the air bridge carries.
AIR = "sim:/var/lib/tmc/air"

# The image's paths as the recipe's (OE's default) variables give them.
OE_PATHS = {
    "bindir": "/usr/bin",
    "systemd_system_unitdir": "/usr/lib/systemd/system",
    "udev_rules_dir": "/usr/lib/udev/rules.d",
    "sysconfdir": "/etc",
}
# The recipe's variables a value read from it may use (its paths above, and the state directory's parent).
OE_VARS = {**OE_PATHS, "localstatedir": "/var"}

# Kernel modules the VMs never load: left out of the root file system (they are most of its size).
MODULE_EXCLUDES = [
    "*/kernel/drivers/gpu/*", "*/kernel/sound/*", "*/kernel/drivers/media/*", "*/kernel/drivers/infiniband/*",
    "*/kernel/drivers/staging/*", "*/kernel/drivers/net/ethernet/*", "*/kernel/drivers/usb/*",
    "*/kernel/drivers/scsi/*", "*/kernel/drivers/iio/*", "*/kernel/drivers/hid/*", "*/kernel/drivers/mtd/*",
    "*/kernel/drivers/isdn/*", "*/kernel/drivers/bluetooth/*", "*/kernel/net/bluetooth/*",
    "*/kernel/drivers/net/wireless/*/*", "*/kernel/drivers/input/*", "*/kernel/drivers/md/*",
    "*/kernel/drivers/nvme/*", "*/kernel/drivers/thunderbolt/*", "*/kernel/drivers/target/*",
    "./usr/lib/firmware/*", "./usr/share/doc/*", "./usr/share/man/*", "./usr/share/locale/*",
]
# The initramfs loads these (with their dependencies) to mount the root disk (ext4 checksums need crc32c).
INITRAMFS_MODULES = ["virtio_pci", "virtio_mmio", "virtio_blk", "crc32c_generic", "ext4"]

ARCHES = {
    # qemu binary, machine options, serial console, Debian/Rust names
    "amd64": {
        "qemu": "qemu-system-x86_64",
        "machine": ["-M", "q35", "-cpu", "max"],
        "console": "ttyS0",
        "rust": "x86_64-unknown-linux-gnu",
        "ld": ["/lib64/ld-linux-x86-64.so.2"],
    },
    "arm64": {
        "qemu": "qemu-system-aarch64",
        "machine": ["-M", "virt", "-cpu", "cortex-a72"],
        "console": "ttyAMA0",
        "rust": "aarch64-unknown-linux-gnu",
        "ld": ["/lib/ld-linux-aarch64.so.1"],
    },
}


def vm_arguments(description: str, work: str) -> argparse.ArgumentParser:
    """The options every VM command takes: architecture, the two builds, the work directory."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=sorted(ARCHES), default="arm64")
    ap.add_argument("--binaries", type=Path, required=True, help="the VMs' build of the project (release)")
    ap.add_argument("--host-binaries", type=Path, required=True, help="tmc-pki and tmc-provision for this machine")
    ap.add_argument("--work", type=Path, default=REPO / work)
    return ap


def fresh_work_dir(prog: str, path: Path) -> Path:
    """An empty work directory with its share; exits if not root (the root disks hold files owned by the image's
    users)."""
    if os.geteuid() != 0:
        raise SystemExit(f"{prog}: needs root (the VMs' root disks hold files owned by the image's users)")
    work = path.resolve()
    shutil.rmtree(work, ignore_errors=True)
    (work / "share").mkdir(parents=True)
    return work


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kw)


# ---------------------------------------------------------------------------------------------------------
# The recipe's accounts


def recipe_var(text: str, name: str) -> str:
    """The value of `name = "..."` in a recipe (line continuations joined)."""
    m = re.search(rf'^{re.escape(name)}\s*\??=\s*"((?:[^"\\]|\\\n|\\.)*)"', text, re.M)
    if not m:
        raise ValueError(f"{RECIPE}: no {name}")
    value = m.group(1).replace("\\\n", " ")
    for var, path in OE_VARS.items():
        value = value.replace("${" + var + "}", path)
    return " ".join(value.split())


def recipe_accounts(recipe: Path = RECIPE) -> tuple[list[list[str]], list[list[str]]]:
    """The groupadd and useradd argument lists of the recipe's GROUPADD_PARAM/USERADD_PARAM (the useradd class
    runs each `;`-separated entry as one command)."""
    text = recipe.read_text()
    groups = [e.split() for e in recipe_var(text, "GROUPADD_PARAM:${PN}").split(";") if e.strip()]
    users = [e.split() for e in recipe_var(text, "USERADD_PARAM:${PN}").split(";") if e.strip()]
    return groups, users


def recipe_binaries(recipe: Path = RECIPE) -> list[str]:
    return recipe_var(recipe.read_text(), "TMC_BINARIES").split()


def add_accounts(root: Path) -> None:
    groups, users = recipe_accounts()
    for args in groups:
        run(["groupadd", "--root", str(root), *args])
    for args in users:
        run(["useradd", "--root", str(root), *args])


def recipe_units(recipe: Path = RECIPE) -> dict[str, list[str]]:
    """SYSTEMD_SERVICE by package suffix (`-relay`, ...)."""
    pattern = r'^SYSTEMD_SERVICE:\$\{PN\}(-[a-z]+)\s*=\s*"([^"]*)"'
    return {m.group(1): m.group(2).split() for m in re.finditer(pattern, recipe.read_text(), re.M)}


def recipe_enabled_units(recipe: Path = RECIPE) -> list[str]:
    """The units the recipe's systemd class enables on the image: SYSTEMD_SERVICE of each package whose
    SYSTEMD_AUTO_ENABLE is "enable"."""
    text = recipe.read_text()
    return [unit for package, units in recipe_units(recipe).items()
            if recipe_var(text, "SYSTEMD_AUTO_ENABLE:${PN}" + package) == "enable" for unit in units]


def group_id(root: Path, name: str) -> int:
    for line in (root / "etc/group").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2])
    raise ValueError(f"{root}/etc/group: no group {name}")


def install_project(root: Path, binaries: Path) -> None:
    """What the recipe's do_install puts on the image: the same script, the recipe's binaries and paths."""
    env = dict(os.environ, **OE_PATHS, TMC_GROUP=str(group_id(root, "tmc")))
    run(["sh", str(RECIPE_FILES / "tmc-install.sh"), str(root), str(binaries), str(RECIPE_FILES),
         *recipe_binaries()], env=env)
    # What the systemd class does when the image is assembled.
    units = recipe_enabled_units()
    if not units:
        raise RuntimeError(f"{RECIPE}: no unit to enable (SYSTEMD_SERVICE / SYSTEMD_AUTO_ENABLE)")
    run(["systemctl", f"--root={root}", "enable", "--quiet", *units])


# ---------------------------------------------------------------------------------------------------------
# Root file system, kernel, initramfs


@dataclass
class Rootfs:
    arch: str
    tarball: Path

    @staticmethod
    def cached(arch: str) -> "Rootfs":
        out = run(["bash", str(REPO / "scripts/vm/rootfs.sh"), arch], stdout=subprocess.PIPE, text=True)
        return Rootfs(arch, Path(out.stdout.strip().splitlines()[-1]))

    def extract(self, dest: Path) -> None:
        dest.mkdir(parents=True)
        cmd = ["tar", "--numeric-owner", "-xpf", str(self.tarball), "-C", str(dest)]
        for pattern in MODULE_EXCLUDES:
            cmd += ["--exclude", pattern]
        run(cmd)


def kernel_version(root: Path) -> str:
    versions = sorted(p.name for p in (root / "usr/lib/modules").iterdir())
    if not versions:
        raise RuntimeError(f"{root}: no kernel modules")
    return versions[-1]


def extract_kernel(root: Path, out: Path) -> Path:
    """The rootfs' kernel as QEMU loads it: bzImage on amd64, the uncompressed Image on arm64."""
    version = kernel_version(root)
    vmlinuz = root / "boot" / f"vmlinuz-{version}"
    data = vmlinuz.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    out.write_bytes(data)
    return out


def module_deps(root: Path, version: str) -> dict[str, list[str]]:
    """modules.dep: module path -> paths it needs, every path relative to the version's directory."""
    deps = {}
    for line in (root / "usr/lib/modules" / version / "modules.dep").read_text().splitlines():
        path, _, needs = line.partition(":")
        deps[path] = needs.split()
    return deps


def module_order(root: Path, version: str, names: list[str]) -> list[str]:
    deps = module_deps(root, version)
    by_name = {}
    for path in deps:
        base = Path(path).name.split(".ko")[0].replace("-", "_")
        by_name[base] = path
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in deps.get(path, []):
            visit(dep)
        order.append(path)

    for name in names:
        if name in by_name:
            visit(by_name[name])
    return order


def elf_needed(path: Path) -> list[str]:
    out = run(["readelf", "-d", str(path)], stdout=subprocess.PIPE, text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def resolve_in(root: Path, path: str) -> Path:
    """`path` inside `root`, following symbolic links as the guest would (absolute targets stay inside root)."""
    p = root / path.lstrip("/")
    for _ in range(16):
        if not p.is_symlink():
            return p
        target = os.readlink(p)
        p = root / target.lstrip("/") if target.startswith("/") else p.parent / target
    raise RuntimeError(f"{root}: symbolic link loop at {path}")


def find_lib(root: Path, name: str) -> Path:
    for d in ["usr/lib/x86_64-linux-gnu", "usr/lib/aarch64-linux-gnu", "lib/x86_64-linux-gnu",
              "lib/aarch64-linux-gnu", "usr/lib64", "lib64", "usr/lib"]:
        p = resolve_in(root, f"{d}/{name}")
        if p.exists():
            return p
    raise FileNotFoundError(f"{root}: no {name}")


def newc_archive(stage: Path) -> bytes:
    """The cpio "newc" archive the kernel unpacks as its initramfs: directories, files and links under `stage`,
    owned by root."""
    out = bytearray()

    def entry(name: str, mode: int, data: bytes, ino: int) -> None:
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0]
        out.extend(b"070701" + b"".join(b"%08x" % f for f in fields) + name.encode() + b"\0")
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    paths = sorted(stage.rglob("*"))
    for ino, path in enumerate(paths, start=1):
        name = str(path.relative_to(stage))
        st = path.lstat()
        if path.is_symlink():
            entry(name, st.st_mode, os.readlink(path).encode(), ino)
        elif path.is_dir():
            entry(name, st.st_mode, b"", ino)
        else:
            entry(name, st.st_mode, path.read_bytes(), ino)
    entry("TRAILER!!!", 0, b"", 0)
    return bytes(out)


INIT = """#!/bin/busybox sh
# The VM's initramfs: load the root disk's modules, mount it, hand over to systemd.
/bin/busybox mkdir -p /proc /sys /dev /newroot
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs devtmpfs /dev
for m in $(/bin/busybox cat /modules.order); do /bin/busybox insmod "/$m" || echo "initramfs: insmod $m failed"; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do /bin/busybox sleep 0.1; i=$((i + 1)); done
/bin/busybox mount -t ext4 -o rw /dev/vda /newroot || { echo "initramfs: cannot mount /dev/vda"; exec /bin/busybox sh; }
/bin/busybox umount /proc
/bin/busybox mount --move /dev /newroot/dev
exec /bin/busybox switch_root /newroot /sbin/init
"""


def build_initramfs(root: Path, out: Path, arch: str) -> Path:
    """A cpio (newc, gzip) with the rootfs' busybox and its libraries, and the modules that mount the root disk."""
    version = kernel_version(root)
    stage = out.parent / (out.name + ".d")
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "bin").mkdir(parents=True)
    busybox = root / "usr/bin/busybox"
    shutil.copy2(busybox, stage / "bin/busybox")
    for lib in elf_needed(busybox):
        src = find_lib(root, lib)
        dest = stage / src.relative_to(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    for ld in ARCHES[arch]["ld"]:
        dest = stage / ld.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(resolve_in(root, ld), dest)
    order = module_order(root, version, INITRAMFS_MODULES)
    for rel in order:
        src = root / "usr/lib/modules" / version / rel
        data = src.read_bytes()
        if rel.endswith(".xz"):
            import lzma
            data, rel = lzma.decompress(data), rel[:-3]
        elif rel.endswith(".zst"):
            raise RuntimeError("zstd-compressed modules are not supported")
        dest = stage / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    (stage / "modules.order").write_text("\n".join(r.removesuffix(".xz") for r in order) + "\n")
    (stage / "init").write_text(INIT)
    (stage / "init").chmod(0o755)
    cpio = newc_archive(stage)
    out.write_bytes(gzip.compress(cpio, compresslevel=1))
    shutil.rmtree(stage)
    return out


# ---------------------------------------------------------------------------------------------------------
# The VM's root disk


@dataclass
class Guest:
    """What the test harness adds to a VM beside the project (never part of the image)."""
    role: str
    # host paths of extra binaries installed into /usr/local/bin (the air bridge, the sensor simulator)
    tools: list[Path] = field(default_factory=list)


def overlay_harness(root: Path, guest: Guest, console: str) -> None:
    def put(rel: str, text: str, mode: int = 0o644) -> None:
        p = root / rel.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(mode)

    for tool in guest.tools:
        shutil.copy2(tool, root / "usr/local/bin" / tool.name)
        (root / "usr/local/bin" / tool.name).chmod(0o755)
    for src in GUEST.iterdir():
        if src.is_file():
            dest = root / "usr/local/lib/tmc-vm" / src.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
    for unit in (GUEST / "units").iterdir():
        shutil.copy2(unit, root / "etc/systemd/system" / unit.name)
        wants = root / "etc/systemd/system/multi-user.target.wants"
        wants.mkdir(exist_ok=True)
        (wants / unit.name).unlink(missing_ok=True)
        (wants / unit.name).symlink_to(f"/etc/systemd/system/{unit.name}")
    # /boot is the Pi's FAT boot partition (the second disk), as on the image.
    put("/etc/fstab", "/dev/vda / ext4 rw,errors=remount-ro 0 1\n"
                      "/dev/vdb /boot vfat defaults,umask=0077 0 2\n"
                      "tmcshare /mnt/tmc-share 9p trans=virtio,version=9p2000.L,nofail,x-systemd.device-timeout=5s 0 0\n")
    # The air bridge runs as the services' user (it joins their air directory); the port is root's by default.
    put("/etc/udev/rules.d/60-tmc-vm-air.rules",
        'SUBSYSTEM=="virtio-ports", ATTR{name}=="tmc.air", GROUP="tmc", MODE="0660"\n')
    put("/etc/hostname", f"tmc-{guest.role}\n")
    put("/etc/hosts", f"127.0.0.1 localhost\n127.0.1.1 tmc-{guest.role}\n")
    if guest.role == "concentrator":
        put("/etc/modules-load.d/tmc-vm-hwsim.conf", "mac80211_hwsim\n")
        put("/etc/modprobe.d/tmc-vm-hwsim.conf", "options mac80211_hwsim radios=2\n")
    (root / "mnt/tmc-share").mkdir(parents=True, exist_ok=True)
    # `make vm`: root logs in on the serial console without a password (the VM has no network to the outside).
    shadow = root / "etc/shadow"
    shadow.write_text(re.sub(r"^root:[^:]*:", "root::", shadow.read_text(), flags=re.M))
    # Debian's own hostapd/dnsmasq/mosquitto start at boot with their defaults; first boot reconfigures them.
    (root / "etc/machine-id").write_text("")


def build_root_disk(rootfs: Rootfs, guest: Guest, binaries: Path, work: Path, size: str = "2G") -> tuple[Path, Path, Path]:
    """root.img (ext4), the kernel and the initramfs for one VM."""
    root = work / "root"
    shutil.rmtree(root, ignore_errors=True)
    rootfs.extract(root)
    add_accounts(root)
    install_project(root, binaries)
    overlay_harness(root, guest, ARCHES[rootfs.arch]["console"])
    kernel = extract_kernel(root, work / "kernel")
    initrd = build_initramfs(root, work / "initrd.gz", rootfs.arch)
    img = work / "root.img"
    img.unlink(missing_ok=True)
    run(["mkfs.ext4", "-q", "-F", "-L", "tmc-root", "-d", str(root), str(img), size], stdout=subprocess.DEVNULL)
    shutil.rmtree(root)
    return img, kernel, initrd


# ---------------------------------------------------------------------------------------------------------
# The boot partition


def build_boot_partition(img: Path, provision: Path, args: list[str], size_mib: int = 64) -> str:
    """A FAT image holding what `tmc-provision write --boot DIR` (what `make provision` runs) wrote. The card's
    mount point is a staging directory here, copied onto the FAT file system with mtools: this machine's kernel
    has no vfat driver to loop-mount it."""
    img.unlink(missing_ok=True)
    staging = img.parent / (img.name + ".d")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    out = subprocess.run([str(provision), "write", "--boot", str(staging), *args], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"tmc-provision write failed:\n{out.stdout}")
    run(["mkfs.vfat", "-n", "BOOT", "-C", str(img), str(size_mib * 1024)], stdout=subprocess.DEVNULL)
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    run(["mcopy", "-s", "-p", "-i", str(img), *[str(p) for p in sorted(staging.iterdir())], "::/"], env=env)
    shutil.rmtree(staging)
    return out.stdout


# ---------------------------------------------------------------------------------------------------------
# The site


def host(binaries: Path, name: str, *args: str, cwd: Path | None = None) -> str:
    out = subprocess.run([str(binaries / name), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{name} {' '.join(args)}:\n{out.stdout}")
    return out.stdout


def make_site(work: Path, tools: Path, sensors: list[str]) -> tuple[Path, str, str]:
    """A site: CA and broker (tmc-pki), the access point's site file, the sensors' keys made in their
    simulated secure elements and certified from their CSRs (tmc-provision sensor-identity)."""
    site = work / "site"
    host(tools, "tmc-pki", "init", "--site", str(site), "--name", "VM test site")
    ssid, passphrase = "tmc-vm-test", secrets.token_hex(12)
    (site / "site.toml").write_text(f'[ap]\nssid = "{ssid}"\npassphrase = "{passphrase}"\n')
    (site / "site.toml").chmod(0o600)
    (site / "chips").mkdir(mode=0o700, exist_ok=True)
    for name in sensors:
        host(tools, "tmc-provision", "sensor-identity", "--site", str(site), "--name", name,
             "--chip", f"sim:{site}/chips/{name}.atecc")
    return site, ssid, passphrase


def rendered_config(work: Path, tools: Path, site: Path, role: str, name: str, options: tuple[str, ...] = ()) -> str:
    """The configuration `tmc-provision write` renders for this board with `options` (written to a scratch
    directory)."""
    scratch = work / f"scratch-{role}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    host(tools, "tmc-provision", "write", "--boot", str(scratch), "--role", role, "--site", str(site),
         "--name", name, "--board", str(BOARD), *options)
    text = (scratch / "tmc" / ("relay.toml" if role == "concentrator" else "receiver.toml")).read_text()
    shutil.rmtree(scratch)
    return text


def vm_config(text: str, extra: str = "") -> str:
    """The rendered configuration with the simulated air instead of the board's SPI (a VM has no radio)."""
    if "[radio]\n" not in text:
        raise RuntimeError(f"rendered configuration has no [radio] section:\n{text}")
    return text.replace("[radio]\n", f'[radio]\nsim = "{AIR}"\n', 1) + extra



# ---------------------------------------------------------------------------------------------------------
# QEMU


@dataclass
class Vm:
    name: str
    arch: str
    root_img: Path
    boot_img: Path
    kernel: Path
    initrd: Path
    share: Path
    air_socket: Path
    air_server: bool
    log: Path
    test: bool = True
    mem: str = "1024"
    proc: subprocess.Popen | None = None
    started: float = 0.0

    def command(self, interactive: bool = False) -> list[str]:
        a = ARCHES[self.arch]
        cmdline = f"root=/dev/vda rw console={a['console']} panic=-1 quiet loglevel=3 systemd.show_status=false"
        if self.test:
            cmdline += (f" tmc.vmtest={self.name} systemd.mask=serial-getty@{a['console']}.service"
                        " systemd.mask=getty@tty1.service systemd.mask=apt-daily.timer"
                        " systemd.mask=apt-daily-upgrade.timer systemd.mask=e2scrub_all.timer"
                        " systemd.mask=fstrim.timer systemd.mask=man-db.timer")
        air = (f"socket,id=air,path={self.air_socket},server=on,wait=off" if self.air_server
               else f"socket,id=air,path={self.air_socket},reconnect=1")
        cmd = [a["qemu"], *a["machine"], "-accel", "tcg,thread=multi", "-smp", "2", "-m", self.mem,
               "-kernel", str(self.kernel), "-initrd", str(self.initrd), "-append", cmdline,
               # cache=none: the host's page cache is bypassed and the guest's flushes reach the disk; what
               # the guest kernel had not written yet is lost when qemu is killed, as in a power cut.
               "-drive", f"file={self.root_img},format=raw,if=virtio,cache=none",
               "-drive", f"file={self.boot_img},format=raw,if=virtio,cache=none",
               "-virtfs", f"local,path={self.share},mount_tag=tmcshare,security_model=none,id=share",
               "-device", "virtio-serial",
               "-chardev", air, "-device", "virtserialport,chardev=air,name=tmc.air",
               # no network device at all: the VM reaches nothing but the links above
               "-nic", "none", "-no-reboot"]
        if interactive:
            cmd += ["-nographic"]
        else:
            cmd += ["-display", "none", "-serial", f"file:{self.log}", "-monitor", "none"]
        return cmd

    def start(self) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log.with_suffix(".qemu.err"), "w"))

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """A power cut: SIGKILL, the disk stops wherever it was."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout) if self.proc else None
        except subprocess.TimeoutExpired:
            return None


def wait_for(check, timeout: float, what: str, interval: float = 0.5, alive=None):
    """Polls `check` until it returns something truthy; fails naming `what` after `timeout` seconds, or at once
    when `alive()` says the thing waited for is gone."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if alive is not None and not alive():
            raise RuntimeError(f"{what}: the VM stopped first")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def prepare_vm(rootfs: Rootfs, role: str, name: str, site: Path, config: Path, work: Path, binaries: Path,
               host_binaries: Path, share: Path, sensors: bool, test: bool = True) -> Vm:
    """One board: its FAT boot partition provisioned for `role` and `name` with `config`, its root disk, and
    the VM that boots them (the gateway serves the air link, the concentrator connects to it)."""
    d = work / role
    d.mkdir(parents=True, exist_ok=True)
    build_boot_partition(d / "boot.img", host_binaries / "tmc-provision",
                         ["--role", role, "--site", str(site), "--name", name, "--board", str(BOARD),
                          "--config", str(config)])
    tools = [binaries / "tmc-air-bridge"] + ([binaries / "tmc-sensor-sim"] if sensors else [])
    img, kernel, initrd = build_root_disk(rootfs, Guest(role, tools), binaries, d)
    return Vm(name=role, arch=rootfs.arch, root_img=img, boot_img=d / "boot.img", kernel=kernel, initrd=initrd,
              share=share, air_socket=work / "air.sock", air_server=(role == "gateway"), log=d / "console.log",
              test=test)
