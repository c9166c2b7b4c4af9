//! Prometheus metrics over HTTP (`[metrics]` in the service's file): a service's counters, mapped to metrics
//! at each scrape.
//!
//! Nothing is kept or updated between scrapes: on `GET /metrics` the service's collect function reads the
//! counters it already keeps for its status snapshot and fills a [`Scrape`], which is encoded in Prometheus'
//! text format (0.0.4, what `promtool check metrics` and every Prometheus read) by the `prometheus` crate. The
//! process' resident memory and start time are added to every scrape.
//!
//! The listener is one thread serving one connection at a time, each bounded by [`IO_TIMEOUT`] and
//! [`tmc_http::MAX_REQUEST_HEAD`]: a scrape every few seconds needs no more, and a client that stalls cannot
//! hold it long.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The `prometheus` crate the scrapes are built with ([`Scrape`]'s errors are its errors).
pub use prometheus;
use prometheus::core::{Collector, Desc};
use prometheus::proto;
use prometheus::{
    Counter, Encoder as _, Gauge, GaugeVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};
use tmc_http::Request;

/// How long a client may take to send its request or read the answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// One scrape's metrics, named `<prefix>_<name>`: fill it from the service's counters.
///
/// Counters' names end in `_total`, durations are in `_seconds`, sizes in `_bytes` (Prometheus' conventions; the
/// tests lint them with `promtool`). A name used twice or not a valid metric name is an error of the service.
pub struct Scrape {
    prefix: String,
    registry: Registry,
}

impl Scrape {
    fn new(prefix: &str) -> Self {
        Scrape {
            prefix: prefix.to_owned(),
            registry: Registry::new(),
        }
    }

    fn opts(&self, name: &str, help: &str) -> Opts {
        Opts::new(format!("{}_{name}", self.prefix), help)
    }

    fn add(&mut self, metric: impl Collector + 'static) -> prometheus::Result<()> {
        self.registry.register(Box::new(metric))
    }

    /// A counter: something counted since the start (`name` ends in `_total`).
    pub fn counter(&mut self, name: &str, help: &str, value: u64) -> prometheus::Result<()> {
        let counter = IntCounter::with_opts(self.opts(name, help))?;
        counter.inc_by(value);
        self.add(counter)
    }

    /// A counter of a fractional amount, such as seconds spent (`name` ends in `_seconds_total`).
    pub fn counter_f64(&mut self, name: &str, help: &str, value: f64) -> prometheus::Result<()> {
        let counter = Counter::with_opts(self.opts(name, help))?;
        counter.inc_by(value);
        self.add(counter)
    }

    /// One counter per value of `label`.
    pub fn counters_by<'a>(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: impl IntoIterator<Item = (&'a str, u64)>,
    ) -> prometheus::Result<()> {
        let counters = IntCounterVec::new(self.opts(name, help), &[label])?;
        for (label_value, value) in values {
            counters
                .get_metric_with_label_values(&[label_value])?
                .inc_by(value);
        }
        self.add(counters)
    }

    /// A gauge: a value that goes up and down (a queue's length, a signal's strength, 1/0 for up/down).
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) -> prometheus::Result<()> {
        let gauge = Gauge::with_opts(self.opts(name, help))?;
        gauge.set(value);
        self.add(gauge)
    }

    /// One gauge per value of `label`.
    pub fn gauges_by<'a>(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: impl IntoIterator<Item = (&'a str, f64)>,
    ) -> prometheus::Result<()> {
        let gauges = GaugeVec::new(self.opts(name, help), &[label])?;
        for (label_value, value) in values {
            gauges
                .get_metric_with_label_values(&[label_value])?
                .set(value);
        }
        self.add(gauges)
    }

    /// A histogram whose observations the service counted itself: `counts[i]` of them at most `bounds[i]`
    /// (not cumulative; the last count is above every bound), `sum` their total. Empty `counts`: nothing
    /// observed yet.
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        bounds: &[f64],
        counts: &[u64],
        sum: f64,
    ) -> prometheus::Result<()> {
        if !counts.is_empty() && counts.len() != bounds.len() + 1 {
            return Err(prometheus::Error::Msg(format!(
                "{name}: {} counts for {} bounds",
                counts.len(),
                bounds.len()
            )));
        }
        let full_name = format!("{}_{name}", self.prefix);
        let desc = Desc::new(
            full_name.clone(),
            help.to_owned(),
            Vec::new(),
            HashMap::new(),
        )?;
        let mut cumulative = 0;
        let buckets = bounds
            .iter()
            .enumerate()
            .map(|(i, bound)| {
                cumulative += counts.get(i).copied().unwrap_or(0);
                let mut bucket = proto::Bucket::default();
                bucket.set_upper_bound(*bound);
                bucket.set_cumulative_count(cumulative);
                bucket
            })
            .collect();
        let mut histogram = proto::Histogram::default();
        histogram.set_bucket(buckets);
        histogram.set_sample_count(counts.iter().sum());
        histogram.set_sample_sum(sum);
        let mut metric = proto::Metric::default();
        metric.set_histogram(histogram);
        let mut family = proto::MetricFamily::default();
        family.set_name(full_name);
        family.set_help(help.to_owned());
        family.set_field_type(proto::MetricType::HISTOGRAM);
        family.set_metric(vec![metric]);
        self.add(Counted { desc, family })
    }

    /// The process' own metrics, under Prometheus' standard names (no prefix): resident memory and start time.
    fn add_process(&mut self, started_unix: u64) -> prometheus::Result<()> {
        if let Some(rss) = resident_bytes() {
            let gauge = Gauge::new(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            )?;
            gauge.set(rss as f64);
            self.add(gauge)?;
        }
        let start = Gauge::new(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
        )?;
        start.set(started_unix as f64);
        self.add(start)
    }

    fn encode(&self) -> prometheus::Result<Vec<u8>> {
        let mut body = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut body)?;
        Ok(body)
    }
}

/// This process' resident set size, from `/proc/self/status` (`VmRSS`, in kB); `None` off Linux.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// What a service gives the listener: fills a scrape from its counters of the moment.
pub type Collect = Box<dyn Fn(&mut Scrape) -> prometheus::Result<()> + Send>;

/// Serves `GET /metrics` on its own thread until dropped.
pub struct MetricsServer {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The listener could not start.
#[derive(Debug, thiserror::Error)]
#[error("[metrics] listen = \"{address}\": {source}")]
pub struct MetricsError {
    pub address: SocketAddr,
    #[source]
    pub source: io::Error,
}

impl MetricsServer {
    /// Listens on `address` (port 0: any free port, see [`MetricsServer::address`]) and serves the metrics
    /// `collect` fills, named `<prefix>_…`, plus the process' own.
    pub fn start(
        address: SocketAddr,
        prefix: &str,
        collect: Collect,
    ) -> Result<MetricsServer, MetricsError> {
        let error = |source| MetricsError { address, source };
        let listener = TcpListener::bind(address).map_err(error)?;
        let bound = listener.local_addr().map_err(error)?;
        let stop = Arc::new(AtomicBool::new(false));
        let serving = Serving {
            prefix: prefix.to_owned(),
            collect,
            started_unix: crate::status::unix_now(),
        };
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("metrics".into())
                .spawn(move || serving.run(&listener, &stop))
                .map_err(error)?
        };
        tracing::info!("serving metrics on http://{bound}/metrics");
        Ok(MetricsServer {
            address: bound,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for MetricsServer {
    /// Stops the listener: the flag, then a connection of its own to wake the blocked `accept`.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let mut wake = self.address;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
        }
        if TcpStream::connect_timeout(&wake, IO_TIMEOUT).is_ok() {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
        // Otherwise the thread stays blocked in `accept` and ends with the process.
    }
}

struct Serving {
    prefix: String,
    collect: Collect,
    started_unix: u64,
}

impl Serving {
    fn run(&self, listener: &TcpListener, stop: &AtomicBool) {
        for stream in listener.incoming() {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            match stream {
                Ok(stream) => {
                    if let Err(e) = self.answer(stream) {
                        tracing::debug!("metrics request: {e}");
                    }
                }
                Err(e) => tracing::debug!("metrics listener: {e}"),
            }
        }
    }

    fn answer(&self, stream: TcpStream) -> io::Result<()> {
        let (status, content_type, body) = match tmc_http::read_request(&stream, IO_TIMEOUT)? {
            Request::Target { method, path } if method == "GET" && path == "/metrics" => {
                match self.scrape() {
                    Ok(body) => ("200 OK", TextEncoder::new().format_type().to_owned(), body),
                    Err(e) => {
                        tracing::warn!("metrics not encoded: {e}");
                        (
                            "500 Internal Server Error",
                            PLAIN.to_owned(),
                            b"metrics not encoded\n".to_vec(),
                        )
                    }
                }
            }
            Request::Target { method, .. } if method == "GET" => (
                "404 Not Found",
                PLAIN.to_owned(),
                b"the metrics are at /metrics\n".to_vec(),
            ),
            Request::Target { .. } => (
                "405 Method Not Allowed",
                PLAIN.to_owned(),
                b"only GET\n".to_vec(),
            ),
            Request::Bad => ("400 Bad Request", PLAIN.to_owned(), Vec::new()),
        };
        tmc_http::respond(&stream, status, &content_type, "", &body)
    }

    fn scrape(&self) -> prometheus::Result<Vec<u8>> {
        let mut scrape = Scrape::new(&self.prefix);
        (self.collect)(&mut scrape)?;
        scrape.add_process(self.started_unix)?;
        scrape.encode()
    }
}

const PLAIN: &str = "text/plain; charset=utf-8";

/// A metric family built whole from counts kept elsewhere ([`Scrape::histogram`]).
struct Counted {
    desc: Desc,
    family: proto::MetricFamily,
}

impl Collector for Counted {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<proto::MetricFamily> {
        vec![self.family.clone()]
    }
}

/// Reads `http://address/path` (the tests' and the demo's scrape): the status code and the body.
pub fn http_get(address: SocketAddr, path: &str) -> io::Result<(u16, String)> {
    tmc_http::get(address, path, IO_TIMEOUT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};

    fn serve(collect: Collect) -> MetricsServer {
        MetricsServer::start("127.0.0.1:0".parse().unwrap(), "tmc_test", collect).unwrap()
    }

    #[test]
    fn a_scrape_parses_with_the_values_given() {
        let server = serve(Box::new(|s: &mut Scrape| {
            s.counter("frames_sent_total", "Frames sent.", 7)?;
            s.counters_by(
                "rejected_total",
                "Messages rejected, by reason.",
                "reason",
                [("topic", 2), ("size", 1)],
            )?;
            s.gauge("airtime_used_seconds", "Airtime used.", 1.25)?;
            s.counter_f64("waited_seconds_total", "Time waited.", 2.5)?;
            s.gauges_by("up", "Connections.", "output", [("upstream", 1.0)])?;
            s.histogram(
                "frame_rssi_dbm",
                "RSSI of frames.",
                &[-100.0, -60.0],
                &[1, 3, 2],
                -400.0,
            )?;
            s.histogram("frame_snr_db", "SNR of frames.", &[0.0, 5.0], &[], 0.0)
        }));
        let (code, body) = http_get(server.address(), "/metrics").unwrap();
        assert_eq!(code, 200, "{body}");
        let scrape = tmc_testkit::Metrics::parse(&body);
        let value = |name: &str, label: Option<(&str, &str)>| {
            scrape
                .value(name, label.as_slice())
                .unwrap_or_else(|| panic!("{name} {label:?} not in {body}"))
        };
        assert_eq!(value("tmc_test_frames_sent_total", None), 7.0);
        assert_eq!(
            value("tmc_test_rejected_total", Some(("reason", "topic"))),
            2.0
        );
        assert_eq!(value("tmc_test_airtime_used_seconds", None), 1.25);
        assert_eq!(value("tmc_test_waited_seconds_total", None), 2.5);
        assert_eq!(value("tmc_test_up", Some(("output", "upstream"))), 1.0);
        assert!(value("process_resident_memory_bytes", None) > 0.0);
        assert!(value("process_start_time_seconds", None) > 1.6e9);
        // Cumulative buckets, the last one +Inf with every observation.
        assert_eq!(
            scrape.histogram("tmc_test_frame_rssi_dbm"),
            Some(vec![(-100.0, 1.0), (-60.0, 4.0), (f64::INFINITY, 6.0)])
        );
        assert_eq!(value("tmc_test_frame_rssi_dbm_sum", None), -400.0);
        assert_eq!(
            scrape.histogram("tmc_test_frame_snr_db"),
            Some(vec![(0.0, 0.0), (5.0, 0.0), (f64::INFINITY, 0.0)]),
            "nothing observed yet"
        );
        tmc_testkit::promtool_check_metrics(&body);
    }

    #[test]
    fn a_histogram_with_counts_that_do_not_fit_its_bounds_is_an_error() {
        let mut scrape = Scrape::new("tmc_test");
        let err = scrape
            .histogram("x_dbm", "X.", &[1.0, 2.0], &[1, 2], 0.0)
            .unwrap_err();
        assert!(
            err.to_string().contains("x_dbm: 2 counts for 2 bounds"),
            "{err}"
        );
    }

    #[test]
    fn other_paths_and_methods_and_errors() {
        let server = serve(Box::new(|s: &mut Scrape| {
            s.counter("twice_total", "", 1)?;
            s.counter("twice_total", "", 2)
        }));
        let (code, _) = http_get(server.address(), "/").unwrap();
        assert_eq!(code, 404);
        // A name registered twice is the service's mistake: an error answer, and the listener goes on.
        let (code, _) = http_get(server.address(), "/metrics").unwrap();
        assert_eq!(code, 500);
        let mut stream = TcpStream::connect(server.address()).unwrap();
        stream.write_all(b"POST /metrics HTTP/1.1\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 405 "), "{response}");
        // Not HTTP at all.
        let mut stream = TcpStream::connect(server.address()).unwrap();
        stream.write_all(b"hello\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    }

    #[test]
    fn an_address_in_use_is_named() {
        let server = serve(Box::new(|_: &mut Scrape| Ok(())));
        let err = MetricsServer::start(server.address(), "x", Box::new(|_: &mut Scrape| Ok(())))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with(&format!("[metrics] listen = \"{}\": ", server.address())),
            "{err}"
        );
    }
}
