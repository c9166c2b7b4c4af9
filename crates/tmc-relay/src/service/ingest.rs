//! MQTT → durable queue.
//!
//! The relay subscribes with a persistent session and **manual acknowledgements**: a message is acknowledged to
//! the broker only after the transaction that stores it has committed (fsync'd). Messages that arrive together
//! are stored in one transaction (group commit), which is what keeps ingest far above what LoRa can carry.
//!
//! - A message that cannot be relayed (topic outside the configured filters, payload over `max_payload` or too
//!   large for one frame, payload not UTF-8) is logged with its reason, counted, and acknowledged without being
//!   stored: keeping it unacknowledged would make the broker resend it forever.
//! - A full queue under the `refuse` policy stores a prefix; the rest stays unacknowledged (the broker stops
//!   sending once `receive_maximum` messages are in flight) and is retried as the radio drains the queue.
//! - A message is stored once even when it comes twice. It comes twice when the relay is killed between commit
//!   and PUBACK (the broker resends it with DUP set when the session resumes), and when a sensor re-publishes a
//!   reading whose PUBACK it lost in a broker restart (the broker had already forwarded it; the copy is a new
//!   message to the broker). The queue remembers the [`tmc_queue::delivery_mark`] of the last 65 536 stored
//!   messages, a digest of topic and payload, and a message that matches one is acknowledged and not stored
//!   again. This relies on what every TMC sensor sends: a per-sensor sequence number in the payload, so two
//!   distinct readings never have the same bytes. `[ingest] dedupe = false` turns it off for sensors that
//!   send bare values (then only DUP-flagged redeliveries are checked).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tmc_mqtt::rumqttc::{
    AckMode, AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS,
};
use tmc_mqtt::{ClientOptions, MqttConfig, MqttConfigError, Session};
use tmc_queue::{delivery_mark, DeliveryMark, NewEntry, QueueError, RelayQueue};
use tmc_service::notify::Heartbeat;
use tmc_service::{Shutdown, Wakeup};
use tokio::sync::mpsc;

use super::topics;

/// The largest MQTT packet the relay accepts; the broker discards larger ones for us (MQTT 5 Maximum Packet
/// Size) instead of breaking the connection.
const MAX_PACKET: u32 = 64 * 1024;

/// Messages stored per transaction, at most.
const MAX_GROUP: usize = 1024;

/// Counters of the ingest side (shared with the status writer).
#[derive(Debug, Default)]
pub struct IngestStats {
    pub connected: AtomicBool,
    /// The broker confirmed the subscriptions (SUBACK) on the current connection.
    pub subscribed: AtomicBool,
    pub connections: AtomicU64,
    pub received: AtomicU64,
    pub stored: AtomicU64,
    pub transactions: AtomicU64,
    pub redelivered: AtomicU64,
    pub rejected_topic: AtomicU64,
    pub rejected_size: AtomicU64,
    pub rejected_not_utf8: AtomicU64,
    /// Messages currently held unacknowledged because the queue is full.
    pub held_full: AtomicU64,
}

/// A snapshot of [`IngestStats`] for the status file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct IngestSnapshot {
    pub connected: bool,
    #[serde(default)]
    pub subscribed: bool,
    pub connections: u64,
    pub received: u64,
    pub stored: u64,
    pub transactions: u64,
    pub redelivered: u64,
    pub rejected_topic: u64,
    pub rejected_size: u64,
    pub rejected_not_utf8: u64,
    pub held_full: u64,
}

impl IngestStats {
    pub fn snapshot(&self) -> IngestSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        IngestSnapshot {
            connected: self.connected.load(Ordering::Relaxed),
            subscribed: self.subscribed.load(Ordering::Relaxed),
            connections: get(&self.connections),
            received: get(&self.received),
            stored: get(&self.stored),
            transactions: get(&self.transactions),
            redelivered: get(&self.redelivered),
            rejected_topic: get(&self.rejected_topic),
            rejected_size: get(&self.rejected_size),
            rejected_not_utf8: get(&self.rejected_not_utf8),
            held_full: get(&self.held_full),
        }
    }
}

/// Whether one reading of this topic and payload fits a frame (the sealer knows).
pub type FitsFrame = Box<dyn Fn(&str, &[u8]) -> bool + Send>;

/// What the ingest needs to know.
pub struct IngestSettings {
    pub broker: MqttConfig,
    pub topics: Vec<String>,
    pub max_payload: usize,
    pub receive_maximum: u16,
    /// Treat a message with the topic and payload of a recently stored one as a copy (see the module docs).
    pub dedupe: bool,
    /// Where the filters of the broker's session are recorded (to notice a changed configuration).
    pub subscriptions_record: Option<std::path::PathBuf>,
    /// Start a new broker session (clean start) on the first connection: the way to change the topics of an
    /// existing session. Messages the broker still held for the relay's old session are dropped with it.
    pub new_session: bool,
    pub fits_frame: FitsFrame,
}

/// Why a message is not relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Topic,
    Size,
    NotUtf8,
}

/// Checks one message; `Ok(topic)` when it may be stored.
pub fn check(settings: &IngestSettings, publish: &Publish) -> Result<String, Rejection> {
    let topic = std::str::from_utf8(&publish.topic).map_err(|_| Rejection::Topic)?;
    if !settings.topics.iter().any(|f| topics::matches(f, topic)) {
        return Err(Rejection::Topic);
    }
    let payload = &publish.payload;
    if payload.len() > settings.max_payload || !(settings.fits_frame)(topic, payload) {
        return Err(Rejection::Size);
    }
    if std::str::from_utf8(payload).is_err() {
        return Err(Rejection::NotUtf8);
    }
    Ok(topic.to_owned())
}

/// The relay's client options: a persistent session with manual acknowledgements, at most `receive_maximum`
/// messages in flight towards the relay, and room for one publish of its own (it publishes nothing).
pub fn client_options(settings: &IngestSettings) -> Result<MqttOptions, MqttConfigError> {
    let mut options = settings.broker.options("relay", Session::Persistent)?;
    options.set_ack_mode(AckMode::Manual);
    options.set_receive_maximum(Some(settings.receive_maximum));
    options.set_max_packet_size(Some(MAX_PACKET));
    // rumqttc sizes its table of outgoing publishes for this many up front (it refuses 0).
    options.set_outgoing_inflight_upper_limit(1);
    if settings.new_session {
        // Session expiry stays: the new session is persistent from here on.
        options.set_clean_start(true);
    }
    Ok(options)
}

/// Runs the MQTT side until `shutdown`; returns after the messages in hand are stored and acknowledged.
pub fn run(
    settings: IngestSettings,
    queue: Arc<RelayQueue>,
    stored: Arc<Wakeup>,
    drained: Arc<Wakeup>,
    stats: Arc<IngestStats>,
    shutdown: Shutdown,
    heartbeat: Heartbeat,
) -> anyhow::Result<()> {
    let options = client_options(&settings)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (client, eventloop) = AsyncClient::builder(options)
            .capacity(usize::from(settings.receive_maximum) * 2 + 16)
            .build();
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        {
            let shutdown = shutdown.clone();
            tokio::task::spawn_blocking(move || {
                shutdown.wait(Duration::MAX);
                let _ = stop_tx.send(true);
            });
        }
        let poller = tokio::spawn(poll(
            eventloop,
            client.clone(),
            settings.topics.clone(),
            settings.subscriptions_record.clone(),
            settings.broker.address(),
            tx,
            stats.clone(),
            stop_rx.clone(),
            heartbeat,
        ));
        let result = store(
            &settings, &client, &queue, &stored, &drained, &stats, rx, stop_rx,
        )
        .await;
        // Let the PUBACKs of the last group go out, then leave cleanly (the session stays on the broker).
        let _ = client.disconnect_with_timeout(Duration::from_secs(2)).await;
        let _ = tokio::time::timeout(Duration::from_secs(3), poller).await;
        result
    })
}

#[allow(clippy::too_many_arguments)]
async fn poll(
    mut eventloop: EventLoop,
    client: AsyncClient,
    filters: Vec<String>,
    record: Option<std::path::PathBuf>,
    address: String,
    tx: mpsc::UnboundedSender<Publish>,
    stats: Arc<IngestStats>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    heartbeat: Heartbeat,
) {
    let mut backoff = Duration::from_millis(500);
    let mut outage_logged = false;
    let mut stopping = false;
    // SUBACKs still expected on this connection: "subscribed" means every filter is in place.
    let mut pending_subacks = 0usize;
    loop {
        heartbeat.beat();
        let event = tokio::select! {
            event = eventloop.poll() => event,
            _ = stop.changed(), if !stopping => { stopping = true; continue; }
            // Idle connections still beat the watchdog.
            () = tokio::time::sleep(Duration::from_secs(1)) => continue,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(connack))) => {
                // A --new-session clean start is for the first connection only: reconnects resume.
                eventloop.options.set_clean_start(false);
                stats.connected.store(true, Ordering::Relaxed);
                stats.connections.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    "connected to the broker at {address} (session {})",
                    if connack.session_present {
                        "resumed"
                    } else {
                        "new"
                    }
                );
                outage_logged = false;
                backoff = Duration::from_millis(500);
                if connack.session_present {
                    // The broker kept the session, subscriptions included. (After a restart of the relay,
                    // rumqttc refuses new SUBSCRIBEs on a session it has no local state for, so the filters
                    // of the run that made the session stay in force: say so if the configuration changed.)
                    pending_subacks = 0;
                    stats.subscribed.store(true, Ordering::Relaxed);
                    if let Some(record) = &record {
                        let recorded = std::fs::read_to_string(record).unwrap_or_default();
                        if recorded.lines().ne(filters.iter().map(String::as_str)) {
                            tracing::warn!(
                                "[ingest] topics differ from those of the broker's session ({}); they take effect \
                                 with a new session: tmc-relay run --new-session",
                                recorded.lines().collect::<Vec<_>>().join(", ")
                            );
                        }
                    }
                } else {
                    pending_subacks = filters.len();
                    for filter in &filters {
                        if let Err(e) = client.try_subscribe(filter.as_str(), QoS::AtLeastOnce) {
                            tracing::warn!("cannot subscribe to {filter}: {e}");
                        }
                    }
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                pending_subacks = pending_subacks.saturating_sub(1);
                tracing::debug!("SUBACK {:?}", ack.return_codes);
                if pending_subacks == 0 {
                    stats.subscribed.store(true, Ordering::Relaxed);
                    tracing::info!("subscribed to {}", filters.join(", "));
                    if let Some(record) = &record {
                        let text = filters.join("\n") + "\n";
                        let written = tmc_secret_file::write_atomic(
                            record,
                            text.as_bytes(),
                            0o644,
                            tmc_secret_file::Overwrite::Replace,
                        );
                        if let Err(e) = written {
                            tracing::warn!("cannot record the subscriptions: {e}");
                        }
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                stats.received.fetch_add(1, Ordering::Relaxed);
                if tx.send(publish).is_err() {
                    return;
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(e) => {
                stats.connected.store(false, Ordering::Relaxed);
                stats.subscribed.store(false, Ordering::Relaxed);
                if stopping {
                    return;
                }
                if !outage_logged {
                    tracing::warn!("broker {address}: {e}; retrying");
                    outage_logged = true;
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => { stopping = true; }
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn store(
    settings: &IngestSettings,
    client: &AsyncClient,
    queue: &RelayQueue,
    stored: &Wakeup,
    drained: &Arc<Wakeup>,
    stats: &IngestStats,
    mut rx: mpsc::UnboundedReceiver<Publish>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    // Messages refused by a full queue, oldest first, still unacknowledged.
    let mut held: Vec<(Publish, String, DeliveryMark)> = Vec::new();
    loop {
        let mut group = Vec::new();
        if held.is_empty() {
            tokio::select! {
                p = rx.recv() => match p { Some(p) => group.push(p), None => return Ok(()) },
                changed = stop.changed() => if changed.is_err() { return Ok(()) },
            }
        }
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(p) => group.push(p),
                Err(_) => break,
            }
        }
        let mut batch = std::mem::take(&mut held);
        for publish in group {
            match check(settings, &publish) {
                Ok(topic) => {
                    let mark = delivery_mark(&topic, &publish.payload);
                    let copy = (settings.dedupe || publish.dup)
                        && (batch.iter().any(|(_, _, m)| *m == mark) || queue.remembers(mark)?);
                    if copy {
                        stats.redelivered.fetch_add(1, Ordering::Relaxed);
                        tracing::info!("{topic}: a copy of a message already queued, acknowledged");
                        ack(client, &publish).await;
                        continue;
                    }
                    batch.push((publish, topic, mark));
                }
                Err(why) => {
                    let topic = String::from_utf8_lossy(&publish.topic);
                    let (counter, reason) = match why {
                        Rejection::Topic => {
                            (&stats.rejected_topic, "topic is not one the relay carries")
                        }
                        Rejection::Size => {
                            (&stats.rejected_size, "payload too large for one frame")
                        }
                        Rejection::NotUtf8 => {
                            (&stats.rejected_not_utf8, "payload is not UTF-8 text")
                        }
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        "dropped a message on {topic:?} ({} bytes): {reason}",
                        publish.payload.len()
                    );
                    ack(client, &publish).await;
                }
            }
        }
        if !batch.is_empty() {
            let now = super::unix_now();
            let entries: Vec<NewEntry<'_>> = batch
                .iter()
                .map(|(p, topic, _)| NewEntry {
                    topic,
                    time: now,
                    payload: &p.payload,
                })
                .collect();
            let marks: Vec<DeliveryMark> = batch.iter().map(|(_, _, m)| *m).collect();
            let stored_count = match queue.push_batch_marked(&entries, &marks) {
                Ok(ids) => ids.len(),
                Err(QueueError::Full { .. }) => 0,
                Err(e) => return Err(e.into()),
            };
            drop(entries);
            stats.transactions.fetch_add(1, Ordering::Relaxed);
            stats
                .stored
                .fetch_add(stored_count as u64, Ordering::Relaxed);
            let rest = batch.split_off(stored_count);
            for (publish, _, _) in &batch {
                ack(client, publish).await;
            }
            if stored_count > 0 {
                stored.ring();
            }
            if !rest.is_empty() && held.is_empty() {
                tracing::warn!(
                    "queue full ({} entries): {} message(s) held unacknowledged until the radio drains it",
                    queue.capacity(),
                    rest.len()
                );
            }
            held = rest;
        }
        stats.held_full.store(held.len() as u64, Ordering::Relaxed);
        if *stop.borrow() {
            // Whatever is still unacknowledged stays with the broker for the next start.
            return Ok(());
        }
        if !held.is_empty() {
            // Wait for the sender to make room (or a second) on a blocking thread, not on the runtime.
            let drained = drained.clone();
            let room = tokio::task::spawn_blocking(move || drained.wait(Duration::from_secs(1)));
            tokio::select! {
                _ = room => {}
                changed = stop.changed() => if changed.is_err() { return Ok(()) },
            }
        }
    }
}

/// Acknowledges a message, waiting for room in the client's request channel: a lost PUBACK would hold one of
/// the broker's in-flight slots for ever (a burst of acknowledgements can exceed the channel's capacity).
async fn ack(client: &AsyncClient, publish: &Publish) {
    if let Err(e) = client.ack(publish).await {
        tracing::warn!("cannot acknowledge message {}: {e}", publish.pkid);
    }
}
