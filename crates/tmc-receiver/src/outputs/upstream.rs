//! Republishing to an upstream MQTT broker: the durable outbox.
//!
//! Each pending record is published with QoS 1 on the topic the template renders, its JSON line as payload. The
//! cursor moves over the prefix of a batch whose PUBACKs came back, and only then; what was in flight when the
//! connection dropped is published again after the reconnect (at-least-once: consumers that de-duplicate use the
//! line's sender, counter and index).
//!
//! While the broker is unreachable the journal only grows: nothing is lost. Reconnects back off from 1 s to 30 s;
//! the outage is logged when it starts and when it ends, not at every retry. Each session builds its client
//! options again, so a renewed client certificate is picked up at the next reconnect.
//!
//! With `[upstream.home_assistant]`, each upstream topic's first reading is preceded by its retained Home
//! Assistant discovery config ([`home_assistant`](crate::outputs::home_assistant)), and every connection
//! starts by publishing this run's announcements again.

use std::time::{Duration, Instant};

use tmc_mqtt::rumqttc::{AsyncClient, Event, Packet, PublishOptions, QoS};
use tmc_mqtt::{ClientOptions, MqttConfigError, Session};
use tmc_queue::{Record, LEGACY_SENDER_BASE};
use tmc_service::notify::Heartbeat;
use tmc_service::Shutdown;
use tokio::sync::mpsc;

use crate::config::{UpstreamConfig, DEFAULT_CLIENT_ID};
use crate::line::record_json;
use crate::outputs::home_assistant::{Announcement, Discovery};
use crate::outputs::{BATCH, IDLE, MAX_BACKOFF, MIN_BACKOFF, UPSTREAM};
use crate::shared::Shared;

/// Longest wait for the broker's CONNACK.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest wait for the PUBACKs of a batch before the connection is considered dead.
const ACK_TIMEOUT: Duration = Duration::from_secs(60);
/// When stopping, how long the batch in flight may still take.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Requests the client may queue: a whole batch fits, so publishing never waits for the event loop.
const CAPACITY: usize = BATCH * 2;
// A whole batch is in flight at once: the client's publish window holds it.
const _: () = assert!(BATCH <= tmc_mqtt::PUBLISH_WINDOW as usize);

/// Why the upstream output could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("[upstream]: {0}")]
    Config(#[from] MqttConfigError),
    #[error("upstream: cannot start its runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// The upstream output.
pub struct Upstream {
    config: UpstreamConfig,
    runtime: tokio::runtime::Runtime,
}

struct Failure {
    /// The session had connected (so the back-off starts over).
    connected: bool,
    message: String,
}

impl Failure {
    fn before_connect(message: impl Into<String>) -> Self {
        Failure {
            connected: false,
            message: message.into(),
        }
    }
}

impl Upstream {
    /// Checks the broker settings (the TLS files are read now, so a missing one stops the start).
    pub fn new(config: UpstreamConfig) -> Result<Self, UpstreamError> {
        config.broker.options(DEFAULT_CLIENT_ID, Session::Clean)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(UpstreamError::Runtime)?;
        Ok(Upstream { config, runtime })
    }

    /// The topic a record is republished on. A legacy record's `{sender}` is its radio node, and its
    /// `{sensor}` is unknown: anyone can forge a legacy frame (its keys are published), so no broker ACL
    /// stands behind its topic.
    pub fn topic(&self, record: &Record) -> String {
        let template = &self.config.topic;
        let topic = if record.legacy {
            let node = record.sender.saturating_sub(LEGACY_SENDER_BASE);
            template.render_unverified(&record.topic, node)
        } else {
            template.render(&record.topic, record.sender)
        };
        // MQTT forbids U+0000 in topics, and an empty topic; neither may block the outbox.
        let topic = topic.replace('\0', "_");
        if topic.is_empty() {
            "_".into()
        } else {
            topic
        }
    }

    /// Runs until `shutdown`; the batch in flight is finished (acknowledged or given up) first.
    pub fn run(self, shared: &Shared, shutdown: &Shutdown, heartbeat: &Heartbeat) {
        self.runtime
            .block_on(self.run_async(shared, shutdown, heartbeat));
    }

    async fn run_async(&self, shared: &Shared, shutdown: &Shutdown, heartbeat: &Heartbeat) {
        let address = self.config.broker.address();
        let mut outage: Option<Instant> = None;
        let mut backoff = MIN_BACKOFF;
        let mut discovery = self.config.home_assistant.clone().map(Discovery::new);
        while !stopping(shared, shutdown) {
            let failure = match self
                .session(shared, shutdown, heartbeat, &mut outage, &mut discovery)
                .await
            {
                Ok(()) => break,
                Err(f) => f,
            };
            if failure.connected {
                backoff = MIN_BACKOFF;
            }
            if outage.is_none() {
                tracing::warn!(
                    "upstream {address}: {}; readings wait in the journal until it is back (retrying with back-off)",
                    failure.message
                );
                outage = Some(Instant::now());
            } else {
                tracing::debug!("upstream {address}: {}", failure.message);
            }
            shared.update_output(UPSTREAM, |o| {
                o.connected = Some(false);
                o.error = Some(failure.message);
            });
            pause(shared, shutdown, heartbeat, backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        shared.update_output(UPSTREAM, |o| o.connected = Some(false));
    }

    /// One connection: connect, then publish until it fails or a stop is requested.
    async fn session(
        &self,
        shared: &Shared,
        shutdown: &Shutdown,
        heartbeat: &Heartbeat,
        outage: &mut Option<Instant>,
        discovery: &mut Option<Discovery>,
    ) -> Result<(), Failure> {
        let address = self.config.broker.address();
        let options = self
            .config
            .broker
            .options(DEFAULT_CLIENT_ID, Session::Clean)
            .map_err(|e| Failure::before_connect(e.to_string()))?;
        let (client, mut eventloop) = AsyncClient::builder(options).capacity(CAPACITY).build();
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        })
        .await;
        match connected {
            Err(_) => {
                return Err(Failure::before_connect(format!(
                    "no CONNACK within {CONNECT_TIMEOUT:?}"
                )))
            }
            Ok(Err(e)) => return Err(Failure::before_connect(e)),
            Ok(Ok(())) => {}
        }
        match outage.take() {
            Some(since) => tracing::info!(
                "upstream {address}: connected again after {} s; delivering the backlog",
                since.elapsed().as_secs()
            ),
            None => tracing::info!("upstream {address}: connected"),
        }
        shared.update_output(UPSTREAM, |o| {
            o.connected = Some(true);
            o.error = None;
        });
        // The notices of tracked publishes resolve only while the event loop is polled: poll it alongside, and
        // hear from it when the connection dies.
        let (dead_tx, mut dead_rx) = mpsc::unbounded_channel();
        let poller = tokio::spawn(async move {
            loop {
                if let Err(e) = eventloop.poll().await {
                    let _ = dead_tx.send(e.to_string());
                    return;
                }
            }
        });
        let result = self
            .publish(
                &client,
                &mut dead_rx,
                shared,
                shutdown,
                heartbeat,
                discovery,
            )
            .await;
        if result.is_ok() {
            // Stopping: a DISCONNECT spares the broker waiting for the keep-alive.
            let _ = tokio::time::timeout(Duration::from_secs(2), client.disconnect()).await;
            let _ = tokio::time::timeout(Duration::from_secs(2), dead_rx.recv()).await;
        }
        poller.abort();
        result.map_err(|message| Failure {
            connected: true,
            message,
        })
    }

    /// Publishes batches until the connection fails (`Err`) or a stop is requested (`Ok`).
    async fn publish(
        &self,
        client: &AsyncClient,
        dead_rx: &mut mpsc::UnboundedReceiver<String>,
        shared: &Shared,
        shutdown: &Shutdown,
        heartbeat: &Heartbeat,
        discovery: &mut Option<Discovery>,
    ) -> Result<(), String> {
        // The broker may have lost its retained messages while this connection was down.
        if let Some(d) = discovery {
            for a in d.all() {
                announce(client, a).await?;
            }
        }
        let mut journal = shared.journal_watch();
        loop {
            heartbeat.beat();
            if stopping(shared, shutdown) {
                return Ok(());
            }
            // Seen before the query: a commit after it ends the wait below at once.
            journal.borrow_and_update();
            let records = shared
                .inbox()
                .pending(UPSTREAM, BATCH)
                .map_err(|e| e.to_string())?;
            if records.is_empty() {
                tokio::select! {
                    _ = journal.changed() => {}
                    _ = tokio::time::sleep(IDLE) => {}
                    e = dead(dead_rx) => return Err(e),
                }
                continue;
            }
            let mut notices = Vec::with_capacity(records.len());
            for r in &records {
                let topic = self.topic(r);
                if let Some(d) = discovery {
                    for a in d.announce(r, &topic) {
                        announce(client, a).await?;
                    }
                }
                let notice = client
                    .publish_tracked(topic, record_json(r), PublishOptions::new(QoS::AtLeastOnce))
                    .await
                    .map_err(|e| format!("publish: {e}"))?;
                notices.push((r.seq, notice));
            }
            let mut acked = None;
            let mut count = 0u64;
            let mut failure = None;
            let mut deadline = Instant::now() + ACK_TIMEOUT;
            for (seq, notice) in notices {
                let mut completion = std::pin::pin!(notice.wait_completion_async());
                let outcome = loop {
                    tokio::select! {
                        r = &mut completion => break r.map_err(|e| format!("publish not acknowledged: {e}")),
                        e = dead(dead_rx) => break Err(e),
                        _ = tokio::time::sleep(IDLE) => {
                            heartbeat.beat();
                            if stopping(shared, shutdown) {
                                deadline = deadline.min(Instant::now() + STOP_GRACE);
                            }
                            if Instant::now() >= deadline {
                                break Err("PUBACKs overdue: connection considered dead".into());
                            }
                        }
                    }
                };
                match outcome {
                    Ok(()) => {
                        acked = Some(seq);
                        count += 1;
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            if let Some(seq) = acked {
                shared
                    .inbox()
                    .delivered(UPSTREAM, seq, 0)
                    .map_err(|e| e.to_string())?;
                shared.update_output(UPSTREAM, |o| o.delivered += count);
            }
            if let Some(e) = failure {
                return Err(e);
            }
        }
    }
}

/// Publishes a discovery config, retained. Not tracked: a config lost with the connection is published again
/// when the next one starts.
async fn announce(client: &AsyncClient, a: &Announcement) -> Result<(), String> {
    client
        .publish(
            a.topic.clone(),
            a.payload.clone(),
            PublishOptions::new(QoS::AtLeastOnce).retained(),
        )
        .await
        .map_err(|e| format!("publish discovery config: {e}"))
}

fn stopping(shared: &Shared, shutdown: &Shutdown) -> bool {
    shutdown.requested() || shared.stopping()
}

/// Resolves when the event loop reported the connection dead (or ended).
async fn dead(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    rx.recv()
        .await
        .unwrap_or_else(|| "connection lost".to_owned())
}

/// Back-off between reconnects, cut short by a stop, beating the heartbeat (an outage is not a hang).
async fn pause(shared: &Shared, shutdown: &Shutdown, heartbeat: &Heartbeat, duration: Duration) {
    let deadline = Instant::now() + duration;
    let mut journal = shared.journal_watch();
    while !stopping(shared, shutdown) {
        heartbeat.beat();
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        // The journal watch also fires on a stop request.
        tokio::select! {
            _ = tokio::time::sleep((deadline - now).min(IDLE)) => {}
            _ = journal.changed() => {}
        }
    }
}
