//! The receiver service on the in-process LoRa simulator (the real SX1276 driver, RadioHead framing, virtual
//! time), fed by a relay-side `LinkSender` with tokens sealed by the real envelope.

use std::path::PathBuf;
use std::time::Duration;

use tmc_envelope::legacy::{self, LegacyKeys};
use tmc_envelope::{Encoding, KeyRing, MemoryCounter, Overwrite, Reading, Sealer};
use tmc_link::{
    DutyCycle, DutyCycleLimiter, LinkError, LinkSender, RadioConfig, ReliableDatagram, SendError,
    SendPolicy,
};
use tmc_queue::Inbox;
use tmc_radio_sim::{sim_link, ChannelConfig, Participant, SimChannel, SimChip, SimClock};
use tmc_receiver::config::Config;
use tmc_receiver::outputs::file_output_name;
use tmc_receiver::service::{RadioInfo, Service};
use tmc_receiver::shared::Snapshot;
use tmc_service::Shutdown;

const GATEWAY: u8 = 1;
const RELAY: u8 = 10;
const STRANGER: u8 = 66;
/// The relay's envelope sender id.
const SENDER: u32 = 10;
const IAT: u64 = 1_763_766_000;
/// Every wait in these tests is bounded by this.
const WAIT: Duration = Duration::from_secs(30);

type Radio = tmc_radio_sim::SimSx1276;

fn reliable(chip: SimChip, address: u8, seed: u64) -> ReliableDatagram<Radio, SimClock> {
    sim_link(
        chip,
        RadioConfig::radiohead_default(868_000_000),
        address,
        seed,
        None,
    )
    .unwrap()
}

/// A site directory: key ring, receiver configuration, state.
struct Site {
    dir: tempfile::TempDir,
    ring: KeyRing,
}

impl Site {
    fn new(legacy: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::generate(1).unwrap();
        ring.save(&dir.path().join("keys.toml"), Overwrite::Refuse)
            .unwrap();
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        let site = Site { dir, ring };
        site.write_config(legacy);
        site
    }

    fn write_config(&self, legacy: bool) {
        std::fs::write(
            self.config_path(),
            format!(
                "state_dir = \"state\"\n\
                 [radio]\nsim = \"sim:unused (the tests hand the service its link)\"\n\
                 [link]\npeers = [{RELAY}]\n\
                 [envelope]\nkeys = \"keys.toml\"\nlegacy = {legacy}\n\
                 [output]\nfile = \"readings.jsonl\"\n\
                 [metrics]\nlisten = \"127.0.0.1:0\"\n"
            ),
        )
        .unwrap();
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("receiver.toml")
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("readings.jsonl")
    }

    fn output(&self) -> String {
        file_output_name(&self.file())
    }

    /// Starts the service as `run` does, on a gateway chip of the simulated channel. `me` (the relay's
    /// participant) is idle meanwhile: setting the radio up takes virtual time.
    fn start(&self, me: &Participant, chip: SimChip) -> Service {
        me.idle(|| self.start_now(chip))
    }

    fn start_now(&self, chip: SimChip) -> Service {
        self.start_on(reliable(chip, GATEWAY, 1))
    }

    fn start_on(&self, link: ReliableDatagram<Radio, SimClock>) -> Service {
        let config = Config::load(&self.config_path()).unwrap();
        let inbox = Inbox::open(&config.inbox_path(), config.window).unwrap();
        Service::start(
            &config,
            link,
            RadioInfo {
                description: "simulated air (test)".into(),
                address: GATEWAY,
            },
            self.ring.clone(),
            inbox,
            Shutdown::new(),
        )
        .unwrap()
    }

    /// The file output's lines, as (sender, counter, index, data).
    fn lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.file())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// Token `i`, carrying `n` readings `"<i>.<j>"`.
fn seal(sealer: &mut Sealer<MemoryCounter>, i: u32, n: u32) -> Vec<u8> {
    let readings: Vec<_> = (0..n)
        .map(|j| Reading::new("sensors/s1/reading", IAT + u64::from(j), format!("{i}.{j}")))
        .collect();
    sealer.seal(&readings, IAT, Encoding::Packed).unwrap().bytes
}

fn relay(chip: SimChip, me: &Participant) -> LinkSender<Radio, SimClock, impl FnMut(Duration)> {
    let sleeper = me.clone();
    LinkSender::new(
        reliable(chip, RELAY, 2),
        GATEWAY,
        SendPolicy {
            rounds: 2,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(2),
        },
        move |d| sleeper.sleep(d),
        3,
    )
}

/// Waits for `done` with virtual time free to run (the gateway's receive slices end, its counters move).
fn wait(me: &Participant, service: &Service, done: impl FnMut(&Snapshot) -> bool) -> Snapshot {
    me.idle(|| service.wait_until(WAIT, done))
        .unwrap_or_else(|| panic!("not reached within {WAIT:?}: {:#?}", service.snapshot()))
}

fn data(lines: &[serde_json::Value]) -> Vec<&str> {
    lines.iter().map(|l| l["data"].as_str().unwrap()).collect()
}

#[test]
fn tokens_are_output_exactly_once_in_order_and_forgeries_replays_and_strangers_are_not() {
    let site = Site::new(false);
    let channel = SimChannel::new(ChannelConfig {
        seed: 11,
        ..ChannelConfig::default()
    });
    // Every participant exists before any thread waits.
    let gateway_chip = channel.add_chip();
    let me = channel.participant();
    let relay_chip = channel.add_chip_for(&me);
    let stranger_chip = channel.add_chip_for(&me);
    let service = site.start(&me, gateway_chip);
    // The relay's radio is set up once the gateway runs (its setup takes virtual time, which a participant that
    // has not started yet would hold still).
    let mut tx = relay(relay_chip, &me);
    let mut sealer = Sealer::new(&site.ring, SENDER, MemoryCounter::starting_at(SENDER, 0));
    let tokens: Vec<Vec<u8>> = (0..4).map(|i| seal(&mut sealer, i, 2)).collect();

    for t in &tokens[..3] {
        tx.send(t).unwrap();
    }
    // A replay: token 0 again, byte for byte, under a new datagram id (the link layer's last token from this
    // node is token 2, so it reaches the inbox). Acknowledged, so a relay that missed our ACK stops resending.
    tx.send(&tokens[0]).unwrap();
    // A forgery: token 3 with one bit of its signature flipped. Refused and not acknowledged.
    let mut forged = tokens[3].clone();
    *forged.last_mut().unwrap() ^= 0x01;
    assert!(
        matches!(tx.send(&forged), Err(SendError::Silent { to: GATEWAY, .. })),
        "a forged token must not be acknowledged"
    );
    tx.send(&tokens[3]).unwrap();
    // A node that is not a peer, even with a genuine token: not acknowledged, not stored.
    let mut stranger = reliable(stranger_chip, STRANGER, 4);
    assert!(matches!(
        stranger.send_to_wait(GATEWAY, &tokens[3]),
        Err(LinkError::NoAck { .. })
    ));

    let output = site.output();
    let s = wait(&me, &service, |s| {
        s.outputs[&output].delivered == 8
            && s.outputs[&output].backlog == 0
            && s.link.unknown_node > 0
    });
    assert_eq!((s.link.tokens_stored, s.link.readings_stored), (4, 8));
    assert_eq!(s.link.duplicates, 1);
    assert!(s.link.refused["bad_signature"] >= 1, "{:?}", s.link.refused);
    assert_eq!(s.link.refused.len(), 1, "{:?}", s.link.refused);
    assert!(s.link.last_rssi_dbm.is_some() && s.link.last_frame_unix.is_some());
    assert_eq!(
        s.journal, 0,
        "every output delivered: the journal is pruned"
    );
    let lines = site.lines();
    assert_eq!(
        data(&lines),
        ["0.0", "0.1", "1.0", "1.1", "2.0", "2.1", "3.0", "3.1"]
    );
    assert_eq!(lines[7]["sender"], SENDER);
    assert_eq!(
        (lines[7]["counter"].as_u64(), lines[7]["index"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(lines[7]["topic"], "sensors/s1/reading");
    check_metrics(&service, &s, &output);
    me.idle(|| service.stop()).unwrap();

    // Restart: everything dropped, the inbox reopened from disk, a new link receiver (it has no memory of the
    // last token). The relay, unsure of its last token, sends it again: acknowledged, nothing output.
    let gateway_chip = channel.add_chip();
    let service = site.start(&me, gateway_chip);
    tx.send(&tokens[3]).unwrap();
    let s = wait(&me, &service, |s| s.link.duplicates == 1);
    assert_eq!(s.link.tokens_stored, 0);
    let snapshot = me.idle(|| service.stop()).unwrap();
    assert!(!snapshot.running);
    assert_eq!(site.lines().len(), 8, "nothing new after the restart");

    // The final snapshot is what `status` shows.
    let o = tmc_testkit::bin_command(env!("CARGO_BIN_EXE_tmc-receiver"))
        .args(["status", "--config"])
        .arg(site.config_path())
        .output()
        .unwrap();
    let text = tmc_testkit::success_stdout(&o);
    assert!(text.starts_with("tmc-receiver: stopped"), "{text}");
    assert!(text.contains("duplicates 1"), "{text}");
    assert!(
        text.contains(&format!("output:   {output}: delivered 0, backlog 0")),
        "{text}"
    );
    let o = tmc_testkit::bin_command(env!("CARGO_BIN_EXE_tmc-receiver"))
        .args(["status", "--json", "--config"])
        .arg(site.config_path())
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&tmc_testkit::success_stdout(&o)).unwrap();
    assert_eq!(json["state"], "stopped");
    assert_eq!(json["snapshot"]["link"]["duplicates"], 1);
    assert_eq!(json["snapshot"]["outputs"][&output]["backlog"], 0);
}

/// What `tmc-web` shows of the link: each frame's RSSI/SNR and airtime, and the relays' airtime in the hour
/// against the band's budget, resent copies included.
#[test]
fn each_frame_is_recorded_with_its_link_quality_and_airtime() {
    let site = Site::new(false);
    let channel = SimChannel::new(ChannelConfig {
        seed: 5,
        ..ChannelConfig::default()
    });
    let gateway_chip = channel.add_chip();
    let me = channel.participant();
    let relay_chip = channel.add_chip_for(&me);
    let radio = RadioConfig::radiohead_default(868_000_000);
    let limiter = DutyCycleLimiter::new(DutyCycle::from_percent(1.0).unwrap());
    let service = me
        .idle(|| site.start_on(sim_link(gateway_chip, radio, GATEWAY, 1, Some(limiter)).unwrap()));
    let mut tx = reliable(relay_chip, RELAY, 2);
    let mut sealer = Sealer::new(&site.ring, SENDER, MemoryCounter::starting_at(SENDER, 0));
    // Tokens of different lengths: one, three and five readings.
    let tokens: Vec<Vec<u8>> = [1, 3, 5].iter().map(|&n| seal(&mut sealer, n, n)).collect();
    for t in &tokens {
        tx.send_to_wait(GATEWAY, t).unwrap();
    }
    // The last token again under the same datagram id: a resent copy (as after a lost ACK), on air again.
    tx.set_next_id(tx.last_id());
    tx.send_to_wait(GATEWAY, &tokens[2]).unwrap();
    let s = wait(&me, &service, |s| {
        s.link.tokens_stored == 3 && s.link.resent_copies == 1
    });
    let airtime = |t: &[u8]| tmc_link::time_on_air(&radio.modem, t.len() + 4).as_millis() as u64;
    let frames = &s.link.recent_frames;
    assert_eq!(
        frames.iter().map(|f| (f.n, f.from)).collect::<Vec<_>>(),
        [(1, RELAY), (2, RELAY), (3, RELAY)]
    );
    assert_eq!(
        frames.iter().map(|f| f.airtime_ms).collect::<Vec<_>>(),
        tokens.iter().map(|t| airtime(t)).collect::<Vec<_>>()
    );
    assert!(frames[0].airtime_ms < frames[2].airtime_ms, "{frames:?}");
    for f in frames {
        assert_eq!(Some(f.rssi_dbm), s.link.last_rssi_dbm);
        assert_eq!(f.snr_db, 38.0 / 4.0, "the channel's RegPktSnrValue");
    }
    let heard: u64 = tokens.iter().map(|t| airtime(t)).sum::<u64>() + airtime(&tokens[2]);
    let now = frames[2].unix;
    assert_eq!(s.link.airtime_heard_last_hour_ms(now), heard);
    assert_eq!(
        s.link.airtime_heard_last_hour_ms(now + 3600),
        0,
        "an hour later it is spent no more"
    );
    assert_eq!(s.link.airtime_budget_ms, Some(36_000), "1 % of an hour");
    // Every frame in the histograms: the channel's -61 dBm is in the bucket up to -60, 9.5 dB up to 10.
    let rssi = &s.link.rssi_dbm;
    assert_eq!(rssi.counts.iter().sum::<u64>(), 3);
    let minus_60 = tmc_receiver::shared::RSSI_BOUNDS_DBM
        .iter()
        .position(|b| *b == -60.0)
        .unwrap();
    assert_eq!(rssi.counts[minus_60], 3, "{rssi:?}");
    assert_eq!(rssi.sum, 3.0 * f64::from(frames[0].rssi_dbm));
    let snr = &s.link.snr_db;
    let ten = tmc_receiver::shared::SNR_BOUNDS_DB
        .iter()
        .position(|b| *b == 10.0)
        .unwrap();
    assert_eq!((snr.counts[ten], snr.sum), (3, 28.5), "{snr:?}");
    me.idle(|| service.stop()).unwrap();
}

#[test]
fn legacy_frames_are_stored_only_when_enabled_and_always_with_a_warning() {
    let site = Site::new(false);
    let channel = SimChannel::new(ChannelConfig {
        seed: 12,
        ..ChannelConfig::default()
    });
    let gateway_chip = channel.add_chip();
    let me = channel.participant();
    let relay_chip = channel.add_chip_for(&me);
    let frame = legacy::seal(&LegacyKeys::default(), b"Temperature: 21.50 C").unwrap();

    // Off (the default): refused, not acknowledged.
    let service = site.start(&me, gateway_chip);
    // The relay's radio is set up once the gateway runs (its setup takes virtual time, which a participant that
    // has not started yet would hold still).
    let mut tx = relay(relay_chip, &me);
    assert!(matches!(tx.send(&frame), Err(SendError::Silent { .. })));
    let s = wait(&me, &service, |s| {
        s.link.refused.contains_key("legacy_disabled")
    });
    assert_eq!(s.link.tokens_stored, 0);
    me.idle(|| service.stop()).unwrap();

    // On: stored without replay protection, output with the node it came from.
    site.write_config(true);
    let service = site.start(&me, channel.add_chip());
    tx.send(&frame).unwrap();
    // A forged legacy frame (its signature no longer matches) is still refused.
    let mut forged = frame.clone();
    let sig_end = forged.len() - 3; // the NUL, then the last signature character (partly padding bits)
    forged[sig_end] = if forged[sig_end] == b'A' { b'B' } else { b'A' };
    assert!(matches!(tx.send(&forged), Err(SendError::Silent { .. })));
    let output = site.output();
    let s = wait(&me, &service, |s| {
        s.outputs[&output].delivered == 1 && s.link.refused.contains_key("legacy_bad_signature")
    });
    assert_eq!((s.link.legacy_frames, s.link.tokens_stored), (1, 1));
    me.idle(|| service.stop()).unwrap();
    let lines = site.lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["data"], "Temperature: 21.50 C");
    assert_eq!(lines[0]["profile"], "legacy");
    assert_eq!(lines[0]["node"], RELAY);
    assert_eq!(lines[0]["topic"], "/esp8266");
    assert!(lines[0].get("sender").is_none());
}

/// `[metrics]`: a scrape over HTTP, parsed as Prometheus parses it, says what the snapshot says, and passes
/// `promtool check metrics`.
fn check_metrics(service: &Service, s: &Snapshot, output: &str) {
    let address = service.metrics_address().expect("[metrics] is configured");
    let (code, body) = tmc_service::metrics::http_get(address, "/metrics").unwrap();
    assert_eq!(code, 200, "{body}");
    let metrics = tmc_testkit::Metrics::parse(&body);
    let value = |name: &str, labels: &[(&str, &str)]| {
        metrics
            .value(name, labels)
            .unwrap_or_else(|| panic!("{name} {labels:?} not in\n{body}"))
    };
    assert_eq!(value("tmc_receiver_readings_stored_total", &[]), 8.0);
    assert_eq!(value("tmc_receiver_tokens_stored_total", &[]), 4.0);
    assert_eq!(value("tmc_receiver_duplicates_total", &[]), 1.0);
    assert_eq!(
        value(
            "tmc_receiver_tokens_rejected_total",
            &[("reason", "bad_signature")]
        ),
        s.link.refused["bad_signature"] as f64
    );
    assert_eq!(
        value(
            "tmc_receiver_tokens_rejected_total",
            &[("reason", "unknown_node")]
        ),
        s.link.unknown_node as f64
    );
    assert_eq!(
        value(
            "tmc_receiver_readings_delivered_total",
            &[("output", output)]
        ),
        8.0
    );
    assert_eq!(
        value(
            "tmc_receiver_output_backlog_readings",
            &[("output", output)]
        ),
        0.0
    );
    let rssi = value("tmc_receiver_last_frame_rssi_dbm", &[]);
    assert!((-164.0..0.0).contains(&rssi), "{rssi}");
    value("tmc_receiver_last_frame_snr_db", &[]);
    // One observation per token's frame, cumulative to +Inf.
    let rssi = metrics.histogram("tmc_receiver_frame_rssi_dbm").unwrap();
    assert_eq!(
        rssi.last(),
        Some(&(f64::INFINITY, s.link.frames_received as f64))
    );
    assert_eq!(
        value("tmc_receiver_frame_snr_db_count", &[]),
        s.link.frames_received as f64
    );
    // Frames came in within the hour (this test's gateway has no duty-cycle limit, so no budget).
    let heard = s
        .link
        .airtime_heard_last_hour_ms(tmc_service::status::unix_now());
    assert!(heard > 0);
    assert_eq!(
        value("tmc_receiver_relay_airtime_heard_seconds", &[]),
        heard as f64 / 1000.0
    );
    assert!(value("process_resident_memory_bytes", &[]) > 0.0);
    tmc_testkit::promtool_check_metrics(&body);
}
