//! `tmc-ap status` against a stand-in for hostapd's control socket (a real hostapd needs a radio) and a
//! dnsmasq lease file.

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::thread;

use tmc_testkit::{bin_command, success_stdout};

/// Answers STA-FIRST / STA-NEXT like hostapd 2.10 does for two stations, then stops.
fn fake_hostapd(socket: UnixDatagram) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let stations = [
            "a4:cf:12:00:00:01\nflags=[AUTH][ASSOC][AUTHORIZED]\naid=1\nsignal=-52\nconnected_time=30\n",
            "a4:cf:12:00:00:09\nflags=[AUTH][ASSOC][AUTHORIZED]\naid=2\nsignal=-70\nconnected_time=5\n",
        ];
        let mut buf = [0u8; 256];
        for _ in 0..3 {
            let (n, from) = socket.recv_from(&mut buf).unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            let reply = match request.as_str() {
                "STA-FIRST" => stations[0],
                "STA-NEXT a4:cf:12:00:00:01" => stations[1],
                _ => "FAIL\n",
            };
            socket
                .send_to(reply.as_bytes(), from.as_pathname().unwrap())
                .unwrap();
        }
    })
}

#[test]
fn stations_and_leases_are_joined_by_mac() {
    let dir = tempfile::tempdir().unwrap();
    let ctrl_dir = dir.path().join("hostapd");
    fs::create_dir(&ctrl_dir).unwrap();
    let server = fake_hostapd(UnixDatagram::bind(ctrl_dir.join("wlan0")).unwrap());
    let leases = dir.path().join("dnsmasq.leases");
    fs::write(
        &leases,
        "4102444800 a4:cf:12:00:00:01 10.33.33.101 sensor-1 *\n0 a4:cf:12:00:00:02 10.33.33.10 * *\n",
    )
    .unwrap();
    let site = dir.path().join("site.toml");
    fs::write(&site, "[ap]\n").unwrap();

    let out = bin_command(env!("CARGO_BIN_EXE_tmc-ap"))
        .arg("--site")
        .arg(&site)
        .args(["status", "--json", "--leases"])
        .arg(&leases)
        .arg("--ctrl-dir")
        .arg(&ctrl_dir)
        .output()
        .unwrap();
    server.join().unwrap();
    let json: serde_json::Value = serde_json::from_str(&success_stdout(&out)).unwrap();
    assert_eq!(json["hostapd"], "ok");
    let clients = json["clients"].as_array().unwrap();
    let summary: Vec<(String, String, bool)> = clients
        .iter()
        .map(|c| {
            (
                c["mac"].as_str().unwrap().to_owned(),
                c["ip"].as_str().unwrap_or("-").to_owned(),
                c["associated"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("a4:cf:12:00:00:09".into(), "-".into(), true),
            ("a4:cf:12:00:00:02".into(), "10.33.33.10".into(), false),
            ("a4:cf:12:00:00:01".into(), "10.33.33.101".into(), true),
        ]
    );
    assert_eq!(clients[2]["signal_dbm"], -52);
    assert_eq!(clients[2]["hostname"], "sensor-1");
}

#[test]
fn without_hostapd_the_table_still_shows_leases() {
    let dir = tempfile::tempdir().unwrap();
    let leases = dir.path().join("dnsmasq.leases");
    fs::write(&leases, "0 a4:cf:12:00:00:02 10.33.33.10 sensor-2 *\n").unwrap();
    let site = dir.path().join("site.toml");
    fs::write(&site, "[ap]\n").unwrap();
    let out = bin_command(env!("CARGO_BIN_EXE_tmc-ap"))
        .arg("--site")
        .arg(&site)
        .args(["status", "--leases"])
        .arg(&leases)
        .arg("--ctrl-dir")
        .arg(dir.path().join("none"))
        .output()
        .unwrap();
    let table = success_stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("hostapd: not reachable: "), "{table}");
    assert!(lines[1].starts_with("MAC "), "{table}");
    assert!(
        lines[2].starts_with("a4:cf:12:00:00:02  10.33.33.10")
            && lines[2].ends_with("never expires"),
        "{table}"
    );
}

#[test]
fn our_end_of_the_control_socket_is_in_a_fresh_private_directory() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use tmc_ap::status::HostapdControl;

    let dir = tempfile::tempdir().unwrap();
    let hostapd = dir.path().join("wlan0");
    let server = UnixDatagram::bind(&hostapd).unwrap();
    // What another local user could plant at the name the old code bound to: left alone now.
    let planted = std::env::temp_dir().join(format!("tmc-ap-ctrl-{}", std::process::id()));
    fs::write(&planted, "planted").unwrap();

    let control = HostapdControl::connect(&hostapd).unwrap();
    let answer = thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"PING");
        let from = from.as_pathname().unwrap().to_owned();
        server.send_to(b"PONG\n", &from).unwrap();
        from
    });
    assert_eq!(control.request("PING").unwrap(), "PONG\n");
    let ours = answer.join().unwrap();
    let private = ours.parent().unwrap().to_owned();
    assert_ne!(ours, planted);
    let meta = fs::symlink_metadata(&private).unwrap();
    assert!(meta.is_dir(), "{}", private.display());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    assert_eq!(meta.uid(), fs::metadata(dir.path()).unwrap().uid());

    drop(control);
    assert!(!private.exists(), "removed with the connection");
    assert_eq!(fs::read_to_string(&planted).unwrap(), "planted");
    fs::remove_file(&planted).unwrap();
}
