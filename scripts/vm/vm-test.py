#!/usr/bin/env python3
"""make vm-test: the Pi image's behaviour under a real kernel and systemd, in two QEMU VMs.

A concentrator and a gateway, each booted from a root file system with the project installed as the recipe
installs it and a FAT boot partition written by `tmc-provision write`. First boot runs under systemd; the
concentrator's access point runs on a mac80211_hwsim radio, a sensor namespace on the second radio joins it
(WPA2-CCMP), gets a lease, resolves mqtt.com and publishes over mutual TLS with the node's code
(tmc-sensor-sim); the relay's LoRa frames reach the gateway's receiver over the two VMs' simulated air, carried
between them by a virtio-serial link; the receiver writes every reading to its file and to an upstream broker
in the gateway VM. Then the power cut: the concentrator VM is killed while the sensors publish, and booted
again; every reading the broker acknowledged must come out of the gateway exactly once.

Neither VM has a network device: the only links are the virtio-serial air link and each VM's 9p share with
this process. Results come back through the share (scripts/vm/guest/agent.sh) and end in `N passed, M failed`.

    scripts/vm/vm-test.py --arch arm64 --binaries DIR --host-binaries DIR [--work DIR] [--keep]
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vmlib  # noqa: E402

SENSORS = ["vmsensor1", "vmsensor2"]
# Boot 1 is cut while these are being published; boot 2 publishes the rest from a higher seq.
BOOT1_READINGS, BOOT2_READINGS, CUT_AFTER = 60, 15, 12
INTERVAL = "250ms"
BOOT2_FIRST_SEQ = 1001


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def line(self, text: str) -> None:
        print(text, flush=True)

    def result(self, ok: bool, name: str, detail: str) -> None:
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        self.line(f"  {'PASS' if ok else 'FAIL'} {name}: {detail}")

    def guest(self, path: Path) -> None:
        """The agent's lines for one boot of one VM."""
        for line in path.read_text().splitlines() if path.exists() else ["FAIL agent: no result (the VM never reported)"]:
            kind, _, rest = line.partition(" ")
            if kind == "INFO":
                self.line(f"  {rest}")
            else:
                name, _, detail = rest.partition(": ")
                self.result(kind == "PASS", name, detail)


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a line being written
    return out


def acknowledged(share: Path) -> dict[tuple[str, int], str]:
    acked: dict[tuple[str, int], str] = {}
    for boot in (1, 2):
        for v in read_jsonl(share / f"ledger.{boot}.jsonl"):
            acked[(v["sensor"], v["seq"])] = v["payload"]
    return acked


def reading_of(record: str) -> tuple[str, int, str]:
    """(sensor, seq, payload) of one output record: the receiver's JSON line, whose `data` is the reading."""
    try:
        payload = json.loads(record).get("data", "")
        p = json.loads(payload)
        return p["id"], p["seq"], payload
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
        return "?", -1, record


def output_readings(share: Path) -> list[tuple[str, int, str]]:
    path = share / "readings.jsonl"
    return [reading_of(line) for line in path.read_text().splitlines()] if path.exists() else []


def upstream_readings(share: Path) -> list[tuple[str, int]]:
    """What the upstream broker's subscriber got: "topic record" lines."""
    path = share / "upstream.txt"
    out = []
    for line in path.read_text().splitlines() if path.exists() else []:
        sensor, seq, _ = reading_of(line.partition(" ")[2])
        if seq >= 0:
            out.append((sensor, seq))
    return out


def main() -> int:
    ap = vmlib.vm_arguments(__doc__, "target/vm-test")
    ap.add_argument("--keep", action="store_true", help="keep the disks and the share afterwards")
    args = ap.parse_args()
    work = vmlib.fresh_work_dir("vm-test", args.work)
    share = work / "share"
    report = Report()
    vms: list[vmlib.Vm] = []
    t0 = time.monotonic()
    try:
        rootfs = vmlib.Rootfs.cached(args.arch)
        report.line(f"vm-test: {args.arch} VMs, root file system {rootfs.tarball.name}")
        site, ssid, passphrase = vmlib.make_site(work, args.host_binaries, SENSORS)

        relay_toml = work / "relay-vm.toml"
        # Both services serve [metrics] and the gateway the page ([web]), as `make provision METRICS=1 WEB=1`
        # writes them; the agents read them at the end of the run.
        relay_toml.write_text(vmlib.vm_config(vmlib.rendered_config(
            work, args.host_binaries, site, "concentrator", "conc1", ("--metrics", "127.0.0.1:9101"))))
        receiver_toml = work / "receiver-vm.toml"
        receiver_toml.write_text(vmlib.vm_config(
            vmlib.rendered_config(work, args.host_binaries, site, "gateway", "gw1",
                                  ("--metrics", "127.0.0.1:9102", "--web", "127.0.0.1:8080")),
            '\n[upstream]\nhost = "127.0.0.1"\nport = 1884\nclient_id = "tmc-receiver"\ntopic = "tmc/{sender}"\n'))

        for role, name, config in (("concentrator", "conc1", relay_toml), ("gateway", "gw1", receiver_toml)):
            vms.append(vmlib.prepare_vm(rootfs, role, name, site, config, work, args.binaries, args.host_binaries,
                                        share, sensors=(role == "concentrator")))
        report.line(f"vm-test: images built in {time.monotonic() - t0:.0f} s")
        concentrator, gateway = vms

        # What the sensor namespace needs: the Wi-Fi secret, and each sensor's certificate and chip.
        (share / "wifi.env").write_text(f"SSID='{ssid}'\nPASSPHRASE='{passphrase}'\n")
        sensor_site = share / "sensor-site"
        (sensor_site / "chips").mkdir(parents=True)
        shutil.copy2(site / "ecc.ca.cert.pem", sensor_site)
        for name in SENSORS:
            shutil.copy2(site / f"ecc.{name}.cert.pem", sensor_site)
            shutil.copy2(site / "chips" / f"{name}.atecc", sensor_site / "chips")
        for boot, first, n in ((1, 1, BOOT1_READINGS), (2, BOOT2_FIRST_SEQ, BOOT2_READINGS)):
            (share / f"sensors.{boot}.env").write_text(
                f"SENSORS={','.join(SENSORS)}\nREADINGS={n}\nINTERVAL={INTERVAL}\nFIRST_SEQ={first}\n")

        gateway.start()
        concentrator.start()
        ledger1 = share / "ledger.1.jsonl"
        vmlib.wait_for(lambda: len(read_jsonl(ledger1)) >= CUT_AFTER, 600,
                       f"concentrator boot 1: {CUT_AFTER} readings acknowledged", alive=concentrator.running)
        concentrator.kill()
        cut = len(read_jsonl(ledger1))
        report.line(f"vm-test: power cut: concentrator VM killed (SIGKILL, disks cache=none) after {cut} acknowledged readings")
        concentrator.log = concentrator.log.with_name("console.2.log")
        concentrator.start()
        vmlib.wait_for(lambda: "sensors:" in (share / "concentrator.2.result").read_text()
                       if (share / "concentrator.2.result").exists() else False,
                       600, "concentrator boot 2: sensors done", alive=concentrator.running)

        acked = acknowledged(share)
        vmlib.wait_for(lambda: set(acked) <= {(s, q) for s, q, _ in output_readings(share)}, 300,
                       "gateway: every acknowledged reading output", interval=1.0, alive=gateway.running)
        vmlib.wait_for(lambda: set(acked) <= set(upstream_readings(share)), 120,
                       "gateway: every acknowledged reading upstream", interval=1.0, alive=gateway.running)
        (share / "finish").write_text("done\n")
        for vm in (concentrator, gateway):
            if vm.wait(180) is None:
                raise TimeoutError(f"{vm.name}: did not power off")
        # The gateway's second boot: first boot must change nothing.
        gateway.log = gateway.log.with_name("console.2.log")
        gateway.start()
        if gateway.wait(300) is None:
            raise TimeoutError("gateway boot 2: did not power off")
    except Exception as e:  # noqa: BLE001 - every failure ends in the report, the VMs stopped
        report.result(False, "scenario", f"{type(e).__name__}: {e}")
        # Let the agents write their journals to the share before the VMs are stopped.
        (share / "finish").write_text("failed\n")
        for vm in vms:
            if vm.running():
                vm.wait(120)
    finally:
        for vm in vms:
            vm.kill()

    for role, boots in (("concentrator", (1, 2)), ("gateway", (1, 2))):
        for boot in boots:
            report.line(f"{role}, boot {boot}:")
            report.guest(share / f"{role}.{boot}.result")
        first, second = share / f"{role}.1.state", share / f"{role}.2.state"
        if first.exists() and second.exists():
            a, b = first.read_text().splitlines(), second.read_text().splitlines()
            changed = sorted(set(a) ^ set(b))
            report.result(not changed and bool(a), f"{role} second boot",
                          f"first boot changed nothing ({len(a)} files compared)" if not changed
                          else f"changed: {changed[:6]}")
    acked = acknowledged(share)
    output = output_readings(share)
    seen: dict[tuple[str, int], int] = {}
    for s, q, payload in output:
        seen[(s, q)] = seen.get((s, q), 0) + 1
    missing = [k for k in acked if k not in seen]
    repeated = [k for k, n in seen.items() if n > 1]
    changed = [(s, q) for s, q, p in output if (s, q) in acked and acked[(s, q)] != p]
    report.line("gateway output:")
    report.result(bool(acked) and not missing and not repeated and not changed, "exactly once",
                  f"{len(acked)} readings acknowledged by the broker, {len(output)} output by the receiver, "
                  f"{len(missing)} missing, {len(repeated)} repeated, {len(changed)} changed, "
                  f"{len(set(seen) - set(acked))} output that the sensors never saw acknowledged")
    up = upstream_readings(share)
    report.result(bool(acked) and set(acked) <= set(up), "upstream",
                  f"{len(set(acked) & set(up))} of {len(acked)} acknowledged readings reached the upstream broker "
                  f"({len(up)} messages)")
    report.line(f"vm-test: {time.monotonic() - t0:.0f} s in all")
    print(f"{report.passed} passed, {report.failed} failed", flush=True)
    if report.failed:
        for journal in sorted(share.glob("*.journal")):
            print(f"--- {journal.name}: the project's units and the harness (last 40 lines)")
            lines = [l for l in journal.read_text(errors="replace").splitlines()
                     if any(k in l for k in ("tmc-", "mosquitto", "hostapd", "dnsmasq", "systemd["))
                     and '"data":' not in l]
            print("\n".join(lines[-40:]))
        for vm in vms:
            for log in sorted(vm.log.parent.glob("console*.log")):
                print(f"--- {log} (last 30 lines)")
                print("\n".join(log.read_text(errors="replace").splitlines()[-30:]))
    if not args.keep and not report.failed:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
