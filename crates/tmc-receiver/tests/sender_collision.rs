//! Two relays forced onto one sender id (the same key ring, both counters from 0) on the simulated air: the
//! receiver keeps accepting what it accepted before, and says in its log and its status that two relays
//! likely share sender id 10.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tmc_envelope::{Encoding, KeyRing, MemoryCounter, Overwrite, Reading, Sealer};
use tmc_link::{LinkSender, RadioConfig, SendPolicy};
use tmc_queue::Inbox;
use tmc_radio_sim::{sim_link, ChannelConfig, SimChannel};
use tmc_receiver::config::Config;
use tmc_receiver::service::{RadioInfo, Service};
use tmc_service::Shutdown;

const GATEWAY: u8 = 1;
const SENDER: u32 = 10;
const IAT: u64 = 1_763_766_000;
const WAIT: Duration = Duration::from_secs(30);

/// The log, captured.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn two_relays_sealing_with_one_sender_id_are_reported_in_the_log_and_status() {
    let log = Log::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let dir = tempfile::tempdir().unwrap();
    let ring = KeyRing::generate(1).unwrap();
    ring.save(&dir.path().join("keys.toml"), Overwrite::Refuse)
        .unwrap();
    let config_path = dir.path().join("receiver.toml");
    std::fs::write(
        &config_path,
        "state_dir = \"state\"\n[radio]\nsim = \"sim:unused\"\n[link]\npeers = [10, 11]\n\
         [envelope]\nkeys = \"keys.toml\"\n[output]\nfile = \"readings.jsonl\"\n",
    )
    .unwrap();
    let config = Config::load(&config_path).unwrap();
    std::fs::create_dir_all(&config.state_dir).unwrap();

    let channel = SimChannel::new(ChannelConfig {
        seed: 5,
        ..ChannelConfig::default()
    });
    let gateway_chip = channel.add_chip();
    let me = channel.participant();
    let chips = [channel.add_chip_for(&me), channel.add_chip_for(&me)];
    let service = me.idle(|| {
        let inbox = Inbox::open(&config.inbox_path(), config.window).unwrap();
        let link = sim_link(
            gateway_chip,
            RadioConfig::radiohead_default(868_000_000),
            GATEWAY,
            1,
            None,
        )
        .unwrap();
        Service::start(
            &config,
            link,
            RadioInfo {
                description: "simulated air (test)".into(),
                address: GATEWAY,
            },
            ring.clone(),
            inbox,
            Shutdown::new(),
        )
        .unwrap()
    });
    // Relays at nodes 10 and 11, both sealing as sender 10 from counter 0.
    let mut relays: Vec<_> = chips
        .into_iter()
        .zip([10u8, 11])
        .map(|(chip, address)| {
            let sleeper = me.clone();
            let link = sim_link(
                chip,
                RadioConfig::radiohead_default(868_000_000),
                address,
                u64::from(address),
                None,
            )
            .unwrap();
            let tx = LinkSender::new(
                link,
                GATEWAY,
                SendPolicy {
                    rounds: 2,
                    initial_backoff: Duration::from_secs(1),
                    max_backoff: Duration::from_secs(2),
                },
                move |d| sleeper.sleep(d),
                u64::from(address),
            );
            let sealer = Sealer::new(&ring, SENDER, MemoryCounter::starting_at(SENDER, 0));
            (address, tx, sealer)
        })
        .collect();
    for i in 0..4u32 {
        for (address, tx, sealer) in &mut relays {
            let reading = Reading::new("sensors/s1/reading", IAT, format!("node {address} #{i}"));
            let token = sealer.seal(&[reading], IAT, Encoding::Packed).unwrap();
            // Every token is acknowledged: the second relay's as replays.
            tx.send(&token.bytes).unwrap();
        }
    }
    let snapshot = me
        .idle(|| {
            service.wait_until(WAIT, |s| {
                s.link.tokens_stored + s.link.duplicates + s.link.stale == 8
            })
        })
        .unwrap_or_else(|| panic!("{:#?}", service.snapshot()));
    // What it accepts is what it accepted before: the first relay's four tokens.
    assert_eq!(
        (snapshot.link.tokens_stored, snapshot.link.duplicates),
        (4, 4)
    );
    assert_eq!(
        snapshot.link.sender_conflicts.get("10"),
        Some(&4),
        "{:#?}",
        snapshot.link
    );
    me.idle(|| service.stop()).unwrap();
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("two relays are likely sealing with sender id 10"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning, naming the sender: {text}");
    assert!(
        warnings[0].contains("WARN") && warnings[0].contains("sender 10: 3 tokens"),
        "{text}"
    );

    // The status says so too.
    let o = tmc_testkit::bin_command(env!("CARGO_BIN_EXE_tmc-receiver"))
        .args(["status", "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    let status = tmc_testkit::success_stdout(&o);
    assert!(
        status.contains("WARNING:  sender 10: 4 token(s)") && status.contains("share sender id 10"),
        "{status}"
    );
}
