//! The `tmc-sensor-sim` command line.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{ArgGroup, Parser};
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::interval::parse_interval;
use crate::sim::{LinkKind, SimConfig, Simulator, TopicStyle};
use crate::stop::StopSignal;

#[derive(Debug, Parser)]
#[command(
    name = "tmc-sensor-sim",
    version,
    about = "Simulated ESP8266 sensors running the firmware's node code: MQTT 3.1.1 QoS 1 over the \
             node's mutual TLS client, each sensor's key in its own simulated ATECC608A",
    group(ArgGroup::new("who").required(true).args(["sensors", "count"]))
)]
pub struct Cli {
    #[command(flatten)]
    pub global: tmc_cli::GlobalArgs,
    /// Site directory (tmc-pki): the CA, each sensor's ecc.<name>.cert.pem and its simulated chip
    /// chips/<name>.atecc.
    #[arg(long, value_name = "DIR")]
    pub site: PathBuf,
    /// Sensor names, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    pub sensors: Vec<String>,
    /// Simulate <prefix>1 … <prefix>N.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub count: Option<u32>,
    /// Name prefix for --count.
    #[arg(long, default_value = "sensor", conflicts_with = "sensors")]
    pub prefix: String,
    /// Broker address to connect to.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 8883)]
    pub port: u16,
    /// The name the broker's certificate must carry, whatever --host is.
    #[arg(long, default_value = tmc_pki::DEFAULT_BROKER_HOST, value_name = "NAME")]
    pub broker_name: String,
    /// Plain TCP without TLS, for a bring-up listener (no certificate or chip is used).
    #[arg(long)]
    pub plain: bool,
    /// Time between a sensor's readings: 500ms, 2s, 1.5s, 1m.
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,
    /// Readings per sensor, then exit (0 only if every one was acknowledged, none dropped); default:
    /// until SIGTERM/Ctrl-C.
    #[arg(long, value_name = "N")]
    pub readings: Option<u64>,
    /// `seq` of each sensor's first reading (to continue an earlier run).
    #[arg(long, value_name = "SEQ", default_value_t = 1)]
    pub first_seq: u64,
    /// `sensor` (sensors/<name>/reading), `esp8266` (the legacy /esp8266), or a topic in which
    /// {id} is the sensor's name.
    #[arg(long, default_value = "sensor", value_parser = parse_topic)]
    pub topic: TopicStyle,
    /// Append one JSON line per acknowledged reading to FILE.
    #[arg(long, value_name = "FILE")]
    pub ledger: Option<PathBuf>,
    /// Give each sensor without a certificate a simulated chip (key made inside it) and a certificate
    /// from the chip's CSR (needs the CA key; regenerate the broker configuration afterwards so its ACL
    /// knows the new sensors).
    #[arg(long)]
    pub issue: bool,
}

fn parse_topic(text: &str) -> Result<TopicStyle, String> {
    text.parse().map_err(|e: crate::SimError| e.to_string())
}

impl Cli {
    /// The simulator's configuration.
    pub fn config(&self) -> SimConfig {
        let sensors = match self.count {
            Some(n) => SimConfig::numbered(&self.prefix, n),
            None => self.sensors.clone(),
        };
        let mut config = SimConfig::new(&self.site, sensors);
        config.host = self.host.clone();
        config.port = self.port;
        config.broker_name = self.broker_name.clone();
        config.link = if self.plain {
            LinkKind::Plain
        } else {
            LinkKind::Tls
        };
        config.interval = self.interval;
        config.readings = self.readings;
        config.first_seq = self.first_seq;
        config.topic = self.topic.clone();
        config.ledger = self.ledger.clone();
        config.issue = self.issue;
        config
    }
}

/// Runs the simulator until `--readings` per sensor are settled or SIGTERM/SIGINT (then after the grace
/// period for the readings in flight), and prints the summary line on stderr. With `--readings`, fails
/// unless every reading was acknowledged.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config();
    let simulator = Simulator::prepare(&config)?;
    let stop = StopSignal::new();
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .context("cannot watch for signals")?;
    let handle = signals.handle();
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let name = if signal == SIGTERM {
                    "SIGTERM"
                } else {
                    "SIGINT"
                };
                tracing::info!("{name}: stopping after the readings in flight");
                stop.request();
            }
        })
    };
    tracing::info!(
        "{} sensor(s) → {}:{} ({}), a reading every {}{}",
        config.sensors.len(),
        config.host,
        config.port,
        match config.link {
            LinkKind::Tls => format!("TLS, broker name {}", config.broker_name),
            LinkKind::Plain => "plain TCP".into(),
        },
        crate::format_interval(config.interval),
        config
            .readings
            .map(|n| format!(", {n} each"))
            .unwrap_or_default()
    );
    let summary = simulator.run(&stop);
    handle.close();
    let _ = watcher.join();
    let summary = summary?;
    eprintln!("{summary}");
    if let Some(n) = config.readings {
        if !summary.complete(n) {
            bail!(
                "not every reading was acknowledged: {} of {} ({} dropped while the broker was away, {} unacknowledged{})",
                summary.acknowledged(),
                n * summary.sensors.len() as u64,
                summary.dropped(),
                summary.unsettled(),
                if summary.stopped { ", stopped early" } else { "" }
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line() {
        let cli = Cli::try_parse_from([
            "tmc-sensor-sim",
            "--site",
            "s",
            "--sensors",
            "a,b",
            "--interval",
            "250ms",
            "--readings",
            "5",
            "--topic",
            "esp8266",
        ])
        .unwrap();
        let c = cli.config();
        assert_eq!(c.sensors, vec!["a", "b"]);
        assert_eq!(c.interval, Duration::from_millis(250));
        assert_eq!((c.readings, c.first_seq), (Some(5), 1));
        assert_eq!(c.topic, TopicStyle::Legacy);
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 8883));
        assert_eq!(
            (c.broker_name.as_str(), &c.link),
            ("mqtt.com", &LinkKind::Tls)
        );
        let cli = Cli::try_parse_from(["x", "--site", "s", "--count", "1", "--plain"]).unwrap();
        assert_eq!(cli.config().link, LinkKind::Plain);

        let cli =
            Cli::try_parse_from(["x", "--site", "s", "--count", "3", "--prefix", "n"]).unwrap();
        assert_eq!(cli.config().sensors, vec!["n1", "n2", "n3"]);
        assert_eq!(cli.config().interval, Duration::from_secs(1));

        for bad in [
            vec!["x", "--site", "s"],
            vec!["x", "--site", "s", "--count", "2", "--sensors", "a"],
            vec!["x", "--site", "s", "--sensors", "a", "--prefix", "b"],
            vec!["x", "--site", "s", "--count", "0"],
            vec!["x", "--site", "s", "--count", "1", "--interval", "fast"],
            vec!["x", "--site", "s", "--count", "1", "--topic", "sensors/#"],
        ] {
            assert!(Cli::try_parse_from(&bad).is_err(), "{bad:?}");
        }
    }
}
