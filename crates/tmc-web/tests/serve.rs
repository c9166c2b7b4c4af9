//! `tmc-web` as a process: a receiver configuration and its files in a temporary directory, the page, the JSON
//! view and the event stream read over real sockets.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;

use common::{append, Web};

/// The next event's data from a stream, skipping keepalive comments.
fn next_event(reader: &mut impl BufRead) -> serde_json::Value {
    let mut line = String::new();
    loop {
        line.clear();
        assert_ne!(reader.read_line(&mut line).unwrap(), 0, "stream closed");
        if let Some(data) = line.strip_prefix("data: ") {
            return serde_json::from_str(data.trim_end()).unwrap();
        }
    }
}

fn last_data(view: &serde_json::Value, topic: &str) -> Option<String> {
    view["sensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["topic"] == topic)
        .map(|s| s["last_data"].as_str().unwrap().to_owned())
}

#[test]
fn api_shows_the_last_reading_per_sensor_and_the_newest_age() {
    let web = Web::start(
        "{\"topic\":\"sensors/a/t\",\"time\":100,\"sender\":10,\"data\":\"21.5\"}\n\
         {\"topic\":\"sensors/b/t\",\"time\":200,\"sender\":10,\"data\":\"18\"}\n\
         {\"topic\":\"sensors/a/t\",\"time\":300,\"sender\":10,\"data\":\"22.5\"}\n",
    );
    let (head, body) = web.get("/api/readings");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Content-Type: application/json"));
    let view: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(last_data(&view, "sensors/a/t").as_deref(), Some("22.5"));
    assert_eq!(last_data(&view, "sensors/b/t").as_deref(), Some("18"));
    assert_eq!(
        view["sensors"][0]["series"]["value"],
        serde_json::json!([[100, 21.5], [300, 22.5]])
    );
    assert_eq!(view["newest_reading_unix"], 300);
    let age = view["newest_reading_age_seconds"].as_u64().unwrap();
    assert_eq!(age, view["now_unix"].as_u64().unwrap() - 300);
    assert!(
        view["receiver"].is_null(),
        "no snapshot: the receiver never ran"
    );
}

#[test]
fn events_carry_each_new_reading_without_a_reload() {
    let web = Web::start("{\"topic\":\"sensors/a/t\",\"time\":100,\"data\":\"1\"}\n");
    let stream = web.connect("GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        assert_ne!(
            reader.read_line(&mut head).unwrap(),
            0,
            "closed in the head"
        );
    }
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Content-Type: text/event-stream"));
    let first = next_event(&mut reader);
    assert_eq!(last_data(&first, "sensors/a/t").as_deref(), Some("1"));

    let output = web.state().join("readings.jsonl");
    append(
        &output,
        "{\"topic\":\"sensors/a/t\",\"time\":160,\"data\":\"2\"}\n",
    );
    let second = next_event(&mut reader);
    assert_eq!(last_data(&second, "sensors/a/t").as_deref(), Some("2"));
    assert_eq!(second["newest_reading_unix"], 160);

    // A status snapshot appearing is an event too, with the link quality it reports.
    // Written aside and renamed into place, as the receiver does, so it is never seen half written.
    let aside = web.dir.path().join("status.tmp");
    std::fs::write(
        &aside,
        r#"{"changed_unix":170,"pid":1,"running":true,"started_unix":1,"radio":"sim","address":1,"peers":[10],
        "legacy_enabled":false,"journal":0,"outputs":{},
        "link":{"frames_heard":2,"frames_received":2,"readings_stored":2,"last_frame_unix":160,
        "last_rssi_dbm":-71,"last_snr_db":8.25,"refused":{},"airtime_budget_ms":36000,"airtime_heard_ms":[],
        "recent_frames":[{"n":2,"unix":160,"from":10,"rssi_dbm":-71,"snr_db":8.25,"airtime_ms":62}]}}"#,
    )
    .unwrap();
    std::fs::rename(&aside, web.state().join("receiver.status.json")).unwrap();
    let third = next_event(&mut reader);
    assert_eq!(third["receiver"]["link"]["last_rssi_dbm"], -71);
    assert_eq!(
        third["link_samples"],
        serde_json::json!([{"n": 2, "unix": 160, "from": 10, "rssi_dbm": -71, "snr_db": 8.25, "airtime_ms": 62}])
    );
    assert_eq!(third["relay_airtime"]["budget_seconds"], 36.0);
}

#[test]
fn the_page_is_self_contained_and_embeds_the_view_safely() {
    let web =
        Web::start("{\"topic\":\"sensors/</script><b>x</b>/t\",\"time\":100,\"data\":\"21.5\"}\n");
    let (head, page) = web.get("/");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Content-Security-Policy: default-src 'none'"));
    assert!(page.contains("id=\"initial-view\""));
    assert!(
        page.contains("sensors/<\\/script><b>x<\\/b>/t"),
        "the topic cannot end the script"
    );
    assert!(!page.contains("src=\"http"), "no external assets");
    assert!(!page.contains("/*VIEW*/"), "the view was filled in");
}

#[test]
fn it_is_read_only_and_writes_nothing() {
    let web = Web::start("{\"topic\":\"a\",\"time\":1,\"data\":\"1\"}\n");
    let listing = |dir: &Path| {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = listing(&web.state());
    let (head, _) = web.request("POST /api/readings HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 405"), "{head}");
    let (head, _) = web.get("/anything-else");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let (_, body) = web.get("/api/readings");
    assert!(body.contains("\"topic\":\"a\""));
    assert_eq!(listing(&web.state()), before);
    assert_eq!(listing(web.dir.path()), vec!["receiver.toml", "state"]);
}

#[test]
fn a_receiver_without_an_output_file_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("receiver.toml");
    std::fs::write(
        &config,
        "[radio]\nsim = \"sim:/tmp/unused-air\"\n[link]\npeers = [10]\n[envelope]\nkeys = \"k\"\n[output]\nstdout = true\n",
    )
    .unwrap();
    let mut cmd = tmc_testkit::bin_command(env!("CARGO_BIN_EXE_tmc-web"));
    cmd.arg("--receiver-config")
        .arg(&config)
        .args(["--listen", "127.0.0.1:0"]);
    let reason = tmc_testkit::failure_reason(&cmd.output().unwrap());
    assert!(reason.contains("no [output] file"), "{reason}");
}

#[test]
fn web_in_receiver_toml_says_where_the_page_is_served() {
    let web = Web::start_with(
        "{\"topic\":\"t\",\"time\":1,\"sender\":10,\"data\":\"5\"}\n",
        "[web]\nlisten = \"127.0.0.1:0\"\n",
        &[],
    );
    assert!(web.addr.starts_with("127.0.0.1:"), "{}", web.addr);
    let (head, body) = web.get("/api/readings");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.contains("\"topic\":\"t\""), "{body}");
}

#[test]
fn without_web_in_receiver_toml_the_page_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("receiver.toml");
    std::fs::write(
        &config,
        "[radio]\nsim = \"sim:/tmp/unused-air\"\n[link]\npeers = [10]\n[envelope]\nkeys = \"k\"\n[output]\nfile = \"r.jsonl\"\n",
    )
    .unwrap();
    let mut cmd = tmc_testkit::bin_command(env!("CARGO_BIN_EXE_tmc-web"));
    cmd.arg("--receiver-config").arg(&config);
    let out = cmd.output().unwrap();
    // Success, so that the image's unit, started on every gateway, ends quietly where the page is not wanted.
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the page is off: no [web] in"), "{stderr}");
    assert!(out.stdout.is_empty());
}
