//! The rendered dnsmasq drop-in with the real dnsmasq, a real DHCP client (busybox udhcpc) and a real
//! resolver (dig), in two network namespaces joined by a veth pair. Nothing leaves those namespaces: the AP
//! side is 10.33.33.1/24, the client side has no address until DHCP gives it one.
//!
//! Needs root and `ip netns`; skipped with a message otherwise (CI runs as root and runs it). Every process
//! is stopped by its pid and every namespace deleted by Drop guards, also when an assertion fails.

use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tmc_ap::daemons::find_program;
use tmc_ap::render;
use tmc_config::SiteConfig;
use tmc_testkit::{bin_command, success_stdout};

const CLIENT_MAC: &str = "02:54:4d:43:00:02";
const DEADLINE: Duration = Duration::from_secs(20);

fn program(name: &str) -> PathBuf {
    find_program(name)
        .unwrap_or_else(|| panic!("{name} is not installed (scripts/deps.sh installs it)"))
}

fn run(args: &[&str]) -> Output {
    let out = Command::new(program(args[0]))
        .args(&args[1..])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Why this machine cannot run the test, if it cannot.
fn unsupported() -> Option<String> {
    let uid = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        })
        .unwrap_or_default();
    if uid != "0" {
        return Some(format!(
            "not root (uid {uid}): network namespaces need CAP_SYS_ADMIN"
        ));
    }
    match find_program("ip").map(|ip| Command::new(ip).args(["netns", "list"]).output()) {
        Some(Ok(out)) if out.status.success() => None,
        Some(Ok(out)) => Some(format!(
            "`ip netns` does not work here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        _ => Some("`ip` (iproute2) is not installed".into()),
    }
}

/// A namespace, deleted on drop (which also destroys the veth end inside it).
struct Netns(String);

impl Netns {
    fn add(name: String) -> Self {
        run(&["ip", "netns", "add", &name]);
        let ns = Netns(name);
        ns.exec_ok(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(program("ip"));
        cmd.args(["netns", "exec", &self.0]).args(args);
        cmd
    }

    fn exec_ok(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().unwrap();
        assert!(
            out.status.success(),
            "in {}: {args:?}: {}",
            self.0,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let ip = find_program("ip").unwrap_or_else(|| PathBuf::from("ip"));
        let _ = Command::new(ip).args(["netns", "del", &self.0]).status();
    }
}

/// A process stopped by its pid on drop (`ip netns exec` execs the command, so the pid is the daemon's).
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `done` until it returns a value or the deadline passes.
fn wait_for<T>(what: &str, mut done: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = done() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs a command to completion, stopping it by its pid at the deadline.
fn output_within(mut cmd: Command, what: &str) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = Process(child);
    wait_for(what, || guard.0.try_wait().unwrap());
    let Process(child) = &mut guard;
    let mut out = Output {
        status: child.wait().unwrap(),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut out.stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut out.stderr)
        .unwrap();
    out
}

/// The udhcpc script: record what the server offered, then configure the address like a sensor would.
fn write_udhcpc_script(dir: &Path) -> PathBuf {
    let script = dir.join("udhcpc.sh");
    let record = dir.join("offer.env");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             case \"$1\" in\n\
             bound|renew)\n\
             \x20 printf 'ip=%s\\nsubnet=%s\\nrouter=%s\\ndns=%s\\nlease=%s\\n' \"$ip\" \"$subnet\" \"$router\" \"$dns\" \"$lease\" > {record}.tmp\n\
             \x20 mv {record}.tmp {record}\n\
             \x20 ip addr add \"$ip/$mask\" dev \"$interface\"\n\
             \x20 ;;\n\
             esac\n\
             exit 0\n",
            record = record.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn env_value<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} missing in {text:?}"))
}

#[test]
fn sensors_get_a_lease_and_mqtt_com_resolves_to_the_ap() {
    if let Some(why) = unsupported() {
        eprintln!("SKIP sensors_get_a_lease_and_mqtt_com_resolves_to_the_ap: {why}");
        return;
    }
    let started = Instant::now();
    let pid = std::process::id();
    let dir = tempfile::tempdir().unwrap();

    // Guards are declared before the processes, so the processes are stopped before the namespaces go.
    let ap_ns = Netns::add(format!("tmcap-{pid}-ap"));
    let client_ns = Netns::add(format!("tmcap-{pid}-cl"));
    let (ap_if, client_if) = (format!("tap{pid}a"), format!("tap{pid}c"));
    // Both ends are created inside their namespaces: the host's own links are never touched.
    run(&[
        "ip",
        "link",
        "add",
        &ap_if,
        "netns",
        &ap_ns.0,
        "type",
        "veth",
        "peer",
        "name",
        &client_if,
        "netns",
        &client_ns.0,
        "address",
        CLIENT_MAC,
    ]);
    ap_ns.exec_ok(&["ip", "addr", "add", "10.33.33.1/24", "dev", &ap_if]);
    ap_ns.exec_ok(&["ip", "link", "set", &ap_if, "up"]);
    client_ns.exec_ok(&["ip", "link", "set", &client_if, "up"]);

    // The rendered drop-in, for the veth instead of wlan0; a static lease for another sensor shows that
    // dnsmasq accepts the dhcp-host lines.
    let site = format!(
        "[ap]\ninterface = \"{ap_if}\"\n[[ap.static_leases]]\nmac = \"a4:cf:12:00:00:01\"\naddress = \"10.33.33.10\"\nname = \"sensor-1\"\n"
    );
    let ap = SiteConfig::from_toml_str(&site, "site.toml").unwrap().ap;
    let drop_in = render(&ap)
        .into_iter()
        .find(|f| f.out_name == "dnsmasq.d-tmc-ap.conf")
        .unwrap();
    let conf = dir.path().join("tmc-ap.conf");
    fs::write(&conf, drop_in.contents().unwrap()).unwrap();
    let leases = dir.path().join("dnsmasq.leases");
    let log = dir.path().join("dnsmasq.log");

    let dnsmasq = program("dnsmasq");
    let dnsmasq = Process(
        ap_ns
            .command(&[
                dnsmasq.to_str().unwrap(),
                "--keep-in-foreground",
                &format!("--conf-file={}", conf.display()),
                &format!("--dhcp-leasefile={}", leases.display()),
                &format!("--log-facility={}", log.display()),
                "--pid-file",
                "--user=root",
                "--log-dhcp",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // udhcpc retries on its own within its bounds; the outer deadline stops it by pid if it hangs.
    let script = write_udhcpc_script(dir.path());
    let busybox = program("busybox");
    let mut udhcpc = client_ns.command(&[
        busybox.to_str().unwrap(),
        "udhcpc",
        "-i",
        &client_if,
        "-f",
        "-q",
        "-n",
        "-t",
        "10",
        "-T",
        "1",
        "-x",
        "hostname:test-sensor",
        "-s",
        script.to_str().unwrap(),
    ]);
    udhcpc
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    let out = output_within(udhcpc, "udhcpc to get a lease");
    let dnsmasq_log = || fs::read_to_string(&log).unwrap_or_default();
    assert!(
        out.status.success(),
        "udhcpc: {}\n{}\ndnsmasq log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        dnsmasq_log()
    );
    let offer = fs::read_to_string(dir.path().join("offer.env")).unwrap();
    let ip: Ipv4Addr = env_value(&offer, "ip").parse().unwrap();
    eprintln!("lease: {}", offer.replace('\n', " "));
    assert!(
        ap.in_dhcp_range(ip),
        "{ip} outside {}–{}",
        ap.dhcp_start,
        ap.dhcp_end
    );
    assert_eq!(env_value(&offer, "subnet"), "255.255.255.0");
    assert_eq!(env_value(&offer, "router"), "10.33.33.1");
    assert_eq!(env_value(&offer, "dns"), "10.33.33.1");
    assert_eq!(env_value(&offer, "lease"), "3600");

    // dnsmasq writes the lease file after it acknowledges: poll for it.
    let lease_line = wait_for("the lease file to list the client", || {
        fs::read_to_string(&leases).ok().and_then(|t| {
            t.lines()
                .find(|l| l.contains(CLIENT_MAC))
                .map(str::to_owned)
        })
    });
    assert!(lease_line.contains(&ip.to_string()), "{lease_line}");
    assert!(lease_line.contains("test-sensor"), "{lease_line}");

    // mqtt.com (and its subdomains) resolve to the AP; other names are not forwarded anywhere (offline).
    let dig = program("dig");
    let dig = |name: &str| {
        let mut cmd = client_ns.command(&[
            dig.to_str().unwrap(),
            "@10.33.33.1",
            "+time=1",
            "+tries=5",
            "+noall",
            "+answer",
            "+comments",
            name,
            "A",
        ]);
        cmd.env_clear().env("PATH", "/usr/bin:/bin");
        output_within(cmd, "dig to answer")
    };
    let answer = String::from_utf8(dig("mqtt.com").stdout).unwrap();
    eprintln!(
        "dig mqtt.com: {}",
        answer
            .lines()
            .filter(|l| l.contains("IN"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    assert!(answer.contains("status: NOERROR"), "{answer}");
    let a_records: Vec<&str> = answer
        .lines()
        .filter(|l| !l.starts_with(';') && l.contains("\tA\t"))
        .collect();
    assert_eq!(a_records.len(), 1, "{answer}");
    assert!(a_records[0].ends_with("10.33.33.1"), "{answer}");
    let sub = String::from_utf8(dig("broker.mqtt.com").stdout).unwrap();
    assert!(sub.contains("10.33.33.1"), "{sub}");
    let other = String::from_utf8(dig("example.org").stdout).unwrap();
    assert!(
        !other
            .lines()
            .any(|l| !l.starts_with(';') && l.contains("\tA\t")),
        "offline: no answer for other names: {other}"
    );

    // tmc-ap status reads the same lease file.
    let site_file = dir.path().join("site.toml");
    fs::write(&site_file, &site).unwrap();
    let status = success_stdout(
        &bin_command(env!("CARGO_BIN_EXE_tmc-ap"))
            .arg("--site")
            .arg(&site_file)
            .args(["status", "--json", "--leases"])
            .arg(&leases)
            .arg("--ctrl-dir")
            .arg(dir.path())
            .output()
            .unwrap(),
    );
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["leases"], "ok");
    assert_eq!(status["clients"][0]["mac"], CLIENT_MAC);
    assert_eq!(status["clients"][0]["ip"], ip.to_string());
    assert_eq!(status["clients"][0]["hostname"], "test-sensor");

    drop(dnsmasq);
    eprintln!("netns DHCP + DNS test took {:?}", started.elapsed());
}
