//! The sensor node's application logic as a hardware-independent state machine.
//!
//! [`Node::poll`] is called by the firmware's main loop with the time, a random number and the three
//! pieces of hardware it needs: a [`Transport`] (the byte stream to the broker; TLS is below it), a
//! [`Sensor`] and a log sink (any [`core::fmt::Write`], one line per event). It returns a [`Wait`]: how
//! long the firmware may sleep before the next call (it may call earlier, e.g. when bytes arrive).
//!
//! What it does:
//!
//! - connect the transport, send CONNECT, wait for CONNACK (a refusal is logged and backed off);
//! - on every tick of the [`PublishSchedule`] read the sensor and queue a reading with the next
//!   per-boot sequence number (1, 2, …) in a small ring of unsent readings ([`QUEUE_LEN`]); when the
//!   ring is full the oldest reading not in flight is dropped, logged and counted;
//! - publish the oldest queued reading at QoS 1, at most one in flight, resend it with DUP when no
//!   PUBACK comes ([`InFlight`]); it leaves the ring only when acknowledged;
//! - keep-alive pings ([`KeepAlive`]);
//! - on a transport error, a protocol error or keep-alive loss: close, back off with jitter
//!   ([`Backoff`]), reconnect, and send the unacknowledged reading again.
//!
//! No allocation; the receive buffer, the ring and the state live in [`Node`].

use core::fmt::{self, Write};

use crate::mqtt::client::{InFlight, KeepAlive, KeepAliveAction, PacketIds};
use crate::mqtt::{self, ConnAck, ConnectRefused, Packet, PacketId, Publish, QoS};
use crate::reading::write_reading;
use crate::schedule::{Backoff, PublishSchedule};

/// The topic the sensors publish to unless configured otherwise.
pub const DEFAULT_TOPIC: &str = "/esp8266";
/// The MQTT-over-TLS port.
pub const MQTT_TLS_PORT: u16 = 8883;
/// Unsent readings kept while the broker is unreachable.
pub const QUEUE_LEN: usize = 8;
/// Receive buffer: the broker sends this node CONNACK, PUBACK, PINGRESP (4 bytes or less); anything
/// larger that does not fit is a protocol error.
const RX_LEN: usize = 128;
/// Transmit buffer for one packet (CONNECT or PUBLISH).
const TX_LEN: usize = 256;
/// Payload buffer for one reading.
const PAYLOAD_LEN: usize = 160;

/// The byte stream to the broker (TLS below it).
pub trait Transport {
    type Error: fmt::Display;
    /// Opens the connection (blocking until established or failed).
    fn connect(&mut self) -> Result<(), Self::Error>;
    /// Sends all of `data`.
    fn send(&mut self, data: &[u8]) -> Result<(), Self::Error>;
    /// Non-blocking: the bytes available now (0: nothing yet). A closed connection is an error.
    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error>;
    /// Closes the connection (no error: it is being abandoned anyway).
    fn close(&mut self);
}

/// The sensor: one 10-bit reading.
pub trait Sensor {
    type Error: fmt::Display;
    fn read(&mut self) -> Result<u16, Self::Error>;
}

/// The node's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeConfig<'a> {
    /// MQTT client id.
    pub client_id: &'a str,
    /// Broker host, for the log only (the transport knows where to connect).
    pub host: &'a str,
    /// Broker port, for the log only.
    pub port: u16,
    /// Topic of the readings.
    pub topic: &'a str,
    /// The `id` in the reading payload.
    pub sensor_id: &'a str,
    /// Publish interval.
    pub interval_ms: u64,
    /// MQTT keep-alive (0: off).
    pub keep_alive_s: u16,
    /// Reconnect back-off bounds.
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
    /// Resend an unacknowledged PUBLISH (DUP) after this long.
    pub puback_retry_ms: u64,
    /// Give up on a CONNACK after this long.
    pub connack_timeout_ms: u64,
    /// Longest [`Wait`] while connected: how often the transport is polled for bytes.
    pub rx_poll_ms: u64,
}

impl<'a> NodeConfig<'a> {
    /// Defaults: topic [`DEFAULT_TOPIC`], port 8883, 1 s interval, keep-alive 60 s, back-off 500 ms …
    /// 60 s, PUBACK retry 5 s, CONNACK timeout 10 s, receive poll 20 ms.
    pub fn new(client_id: &'a str, host: &'a str, sensor_id: &'a str) -> Self {
        NodeConfig {
            client_id,
            host,
            port: MQTT_TLS_PORT,
            topic: DEFAULT_TOPIC,
            sensor_id,
            interval_ms: 1000,
            keep_alive_s: 60,
            backoff_min_ms: 500,
            backoff_max_ms: 60_000,
            puback_retry_ms: 5000,
            connack_timeout_ms: 10_000,
            rx_poll_ms: 20,
        }
    }
}

/// How long the caller may sleep before the next [`Node::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait(pub u64);

/// A reading not yet acknowledged by the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pending {
    pub seq: u64,
    pub adc: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Not connected; (re)connect at `retry_at_ms`.
    Disconnected {
        retry_at_ms: u64,
    },
    /// CONNECT sent at `since_ms`.
    AwaitConnAck {
        since_ms: u64,
    },
    Connected {
        keep_alive: KeepAlive,
    },
}

/// What came from the broker, copied out of the receive buffer.
#[derive(Debug, Clone, Copy)]
enum Incoming {
    ConnAck(ConnAck),
    PubAck(PacketId),
    PingResp,
    Other,
}

/// Counters for the caller (status LED, diagnostics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeStats {
    /// Readings dropped because the ring was full.
    pub dropped: u64,
    /// Readings acknowledged by the broker.
    pub acked: u64,
    /// PUBLISH packets sent, resends included.
    pub publishes_sent: u64,
    /// Connections established (CONNACK accepted).
    pub connects: u64,
    /// Connections lost or refused.
    pub failures: u64,
    /// Sensor reads that failed.
    pub sensor_errors: u64,
    /// Schedule slots skipped.
    pub missed_slots: u64,
}

/// The sensor node.
#[derive(Debug)]
pub struct Node<'a> {
    config: NodeConfig<'a>,
    state: State,
    schedule: Option<PublishSchedule>,
    backoff: Backoff,
    ids: PacketIds,
    next_seq: u64,
    queue: [Pending; QUEUE_LEN],
    queued: usize,
    /// The PUBLISH of `queue[0]`, when sent on the current connection.
    in_flight: Option<InFlight>,
    rx: [u8; RX_LEN],
    rx_len: usize,
    stats: NodeStats,
    /// No reading with a higher sequence number is taken (`None`: no limit).
    reading_limit: Option<u64>,
    /// Readings acknowledged since the caller last drained them ([`Node::take_acked`]), oldest first. At
    /// most one PUBACK is accepted per step and a poll runs at most [`STEPS_PER_POLL`] steps, so a caller
    /// that drains after every poll never loses one; beyond that the oldest is overwritten.
    acked: [Pending; QUEUE_LEN],
    acked_len: usize,
}

/// Steps of the connection state machine per [`Node::poll`].
const STEPS_PER_POLL: usize = 4;

/// A failure that ends the connection (logged as `mqtt: connection lost: <reason>`).
struct Lost<E>(LostReason<E>);

enum LostReason<E> {
    Transport(E),
    KeepAlive,
    ConnAckTimeout,
    Protocol(mqtt::DecodeError),
    TooLarge,
    Refused(ConnectRefused),
    ConnectFailed(E),
    Unexpected(&'static str),
}

impl<E: fmt::Display> fmt::Display for LostReason<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LostReason::Transport(e) => write!(f, "{e}"),
            LostReason::KeepAlive => f.write_str("keep-alive"),
            LostReason::ConnAckTimeout => f.write_str("no CONNACK"),
            LostReason::Protocol(e) => write!(f, "protocol error: {e}"),
            LostReason::TooLarge => f.write_str("packet too large"),
            LostReason::Refused(r) => f.write_str(refusal_text(*r)),
            LostReason::ConnectFailed(e) => write!(f, "{e}"),
            LostReason::Unexpected(what) => write!(f, "protocol error: {what}"),
        }
    }
}

/// The refusal as the log says it (`mqtt: refused: not authorized`).
pub fn refusal_text(refused: ConnectRefused) -> &'static str {
    match refused {
        ConnectRefused::UnacceptableProtocolVersion => "unacceptable protocol version",
        ConnectRefused::IdentifierRejected => "identifier rejected",
        ConnectRefused::ServerUnavailable => "server unavailable",
        ConnectRefused::BadUserNameOrPassword => "bad user name or password",
        ConnectRefused::NotAuthorized => "not authorized",
    }
}

impl<'a> Node<'a> {
    /// A node that connects at its first [`poll`](Self::poll); the first reading is taken then too.
    pub fn new(config: NodeConfig<'a>) -> Self {
        Node {
            config,
            state: State::Disconnected { retry_at_ms: 0 },
            schedule: None,
            backoff: Backoff::new(config.backoff_min_ms, config.backoff_max_ms),
            ids: PacketIds::new(),
            next_seq: 1,
            queue: [Pending::default(); QUEUE_LEN],
            queued: 0,
            in_flight: None,
            rx: [0; RX_LEN],
            rx_len: 0,
            stats: NodeStats::default(),
            reading_limit: None,
            acked: [Pending::default(); QUEUE_LEN],
            acked_len: 0,
        }
    }

    /// Numbers the next reading `seq` (e.g. continuing a count kept across a restart).
    pub fn set_next_seq(&mut self, seq: u64) {
        self.next_seq = seq;
    }

    /// Takes no reading numbered above `last_seq` (`None`: readings go on for ever). The readings already
    /// taken are still sent.
    pub fn set_reading_limit(&mut self, last_seq: Option<u64>) {
        self.reading_limit = last_seq;
    }

    /// The oldest reading acknowledged by the broker since the last call; call it until `None` after
    /// every [`poll`](Self::poll). Each acknowledged reading comes out exactly once.
    pub fn take_acked(&mut self) -> Option<Pending> {
        if self.acked_len == 0 {
            return None;
        }
        let oldest = self.acked[0];
        self.acked.copy_within(1..self.acked_len, 0);
        self.acked_len -= 1;
        Some(oldest)
    }

    fn record_acked(&mut self, reading: Pending) {
        if self.acked_len == QUEUE_LEN {
            self.acked.copy_within(1.., 0);
            self.acked_len -= 1;
        }
        self.acked[self.acked_len] = reading;
        self.acked_len += 1;
    }

    pub fn config(&self) -> &NodeConfig<'a> {
        &self.config
    }

    pub fn stats(&self) -> NodeStats {
        self.stats
    }

    /// Whether CONNACK accepted the current connection.
    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected { .. })
    }

    /// Readings waiting for their PUBACK (the one in flight included), oldest first.
    pub fn queued(&self) -> &[Pending] {
        &self.queue[..self.queued]
    }

    /// Sequence number the next reading gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Does whatever is due at `now_ms`; `rng` is a fresh random number (back-off jitter).
    pub fn poll<T: Transport, S: Sensor, L: Write>(
        &mut self,
        now_ms: u64,
        rng: u32,
        transport: &mut T,
        sensor: &mut S,
        log: &mut L,
    ) -> Wait {
        self.take_reading(now_ms, sensor, log);
        // A few steps per call so that e.g. CONNACK then PUBLISH happen in one poll.
        for _ in 0..STEPS_PER_POLL {
            match self.step(now_ms, transport, log) {
                Ok(true) => {}
                Ok(false) => break,
                Err(Lost(reason)) => {
                    let what = match reason {
                        LostReason::Refused(_) => "refused",
                        LostReason::ConnectFailed(_) => "connect failed",
                        _ => "connection lost",
                    };
                    let _ = writeln!(log, "mqtt: {what}: {reason}");
                    self.fail(now_ms, rng, transport, log);
                    break;
                }
            }
        }
        Wait(self.wait_ms(now_ms))
    }

    fn take_reading<S: Sensor, L: Write>(&mut self, now_ms: u64, sensor: &mut S, log: &mut L) {
        let interval = self.config.interval_ms;
        let schedule = self
            .schedule
            .get_or_insert_with(|| PublishSchedule::new(interval, now_ms));
        let Some(tick) = schedule.poll(now_ms) else {
            return;
        };
        if self.reading_limit.is_some_and(|last| self.next_seq > last) {
            return;
        }
        if tick.missed > 0 {
            self.stats.missed_slots = self.stats.missed_slots.saturating_add(tick.missed);
            let _ = writeln!(log, "schedule: missed {} slot(s)", tick.missed);
        }
        match sensor.read() {
            Ok(adc) => {
                let seq = self.next_seq;
                self.next_seq = self.next_seq.saturating_add(1);
                self.enqueue(Pending { seq, adc }, log);
            }
            Err(e) => {
                self.stats.sensor_errors = self.stats.sensor_errors.saturating_add(1);
                let _ = writeln!(log, "sensor: read failed: {e}");
            }
        }
    }

    fn enqueue<L: Write>(&mut self, reading: Pending, log: &mut L) {
        if self.queued == QUEUE_LEN {
            // Drop the oldest reading that is not in flight (the one in flight may be acknowledged).
            let victim = usize::from(self.in_flight.is_some());
            let dropped = self.queue[victim];
            self.queue.copy_within(victim + 1.., victim);
            self.queued -= 1;
            self.stats.dropped = self.stats.dropped.saturating_add(1);
            let _ = writeln!(
                log,
                "queue full: dropped seq={} (dropped {} so far)",
                dropped.seq, self.stats.dropped
            );
        }
        self.queue[self.queued] = reading;
        self.queued += 1;
    }

    /// One step of the connection state machine: `Ok(true)` when something changed and another step
    /// may do more.
    fn step<T: Transport, L: Write>(
        &mut self,
        now_ms: u64,
        transport: &mut T,
        log: &mut L,
    ) -> Result<bool, Lost<T::Error>> {
        match &self.state {
            State::Disconnected { retry_at_ms } => {
                if now_ms < *retry_at_ms {
                    return Ok(false);
                }
                let _ = writeln!(
                    log,
                    "mqtt: connecting to {}:{}",
                    self.config.host, self.config.port
                );
                transport
                    .connect()
                    .map_err(|e| Lost(LostReason::ConnectFailed(e)))?;
                self.rx_len = 0;
                self.in_flight = None;
                let connect =
                    mqtt::Connect::new(self.config.client_id, self.config.keep_alive_s, true);
                let mut tx = [0u8; TX_LEN];
                let n = connect
                    .encode(&mut tx)
                    .map_err(|_| Lost(LostReason::TooLarge))?;
                transport
                    .send(&tx[..n])
                    .map_err(|e| Lost(LostReason::Transport(e)))?;
                self.state = State::AwaitConnAck { since_ms: now_ms };
                Ok(true)
            }
            State::AwaitConnAck { since_ms } => {
                let since_ms = *since_ms;
                match self.receive(transport)? {
                    Some(Incoming::ConnAck(ack)) => match ack.result() {
                        Ok(session_present) => {
                            let _ = writeln!(
                                log,
                                "mqtt: connected (session present={})",
                                u8::from(session_present)
                            );
                            self.backoff.reset();
                            self.stats.connects = self.stats.connects.saturating_add(1);
                            self.state = State::Connected {
                                keep_alive: KeepAlive::new(self.config.keep_alive_s, now_ms),
                            };
                            Ok(true)
                        }
                        Err(refused) => Err(Lost(LostReason::Refused(refused))),
                    },
                    Some(_) => Err(Lost(LostReason::Unexpected("packet before CONNACK"))),
                    None if now_ms.saturating_sub(since_ms) >= self.config.connack_timeout_ms => {
                        Err(Lost(LostReason::ConnAckTimeout))
                    }
                    None => Ok(false),
                }
            }
            State::Connected { .. } => self.step_connected(now_ms, transport, log),
        }
    }

    fn step_connected<T: Transport, L: Write>(
        &mut self,
        now_ms: u64,
        transport: &mut T,
        log: &mut L,
    ) -> Result<bool, Lost<T::Error>> {
        let mut progressed = false;
        while let Some(incoming) = self.receive(transport)? {
            progressed = true;
            if let State::Connected { keep_alive } = &mut self.state {
                keep_alive.packet_received(now_ms);
            }
            match incoming {
                Incoming::PubAck(id) => {
                    if self.in_flight.as_ref().is_some_and(|f| f.is_acked_by(id)) && self.queued > 0
                    {
                        let acked = self.queue[0];
                        self.queue.copy_within(1.., 0);
                        self.queued -= 1;
                        self.in_flight = None;
                        self.stats.acked = self.stats.acked.saturating_add(1);
                        self.record_acked(acked);
                        let _ = writeln!(log, "puback seq={}", acked.seq);
                    }
                }
                Incoming::ConnAck(_) => return Err(Lost(LostReason::Unexpected("second CONNACK"))),
                Incoming::PingResp | Incoming::Other => {}
            }
        }
        let action = match &mut self.state {
            State::Connected { keep_alive } => keep_alive.poll(now_ms),
            _ => KeepAliveAction::Wait,
        };
        match action {
            KeepAliveAction::Wait => {}
            KeepAliveAction::SendPingReq => {
                let _ = writeln!(log, "mqtt: ping");
                transport
                    .send(&mqtt::PINGREQ)
                    .map_err(|e| Lost(LostReason::Transport(e)))?;
            }
            KeepAliveAction::ConnectionLost => return Err(Lost(LostReason::KeepAlive)),
        }
        let qos = match &mut self.in_flight {
            Some(in_flight) => in_flight.poll(now_ms),
            None if self.queued > 0 => {
                let id = self.ids.next_id();
                let in_flight = InFlight::sent(id, now_ms, self.config.puback_retry_ms);
                let qos = in_flight.first_qos();
                self.in_flight = Some(in_flight);
                Some(qos)
            }
            None => None,
        };
        if let Some(qos) = qos {
            self.publish_head(now_ms, qos, transport, log)?;
            progressed = true;
        }
        Ok(progressed)
    }

    fn publish_head<T: Transport, L: Write>(
        &mut self,
        now_ms: u64,
        qos: QoS,
        transport: &mut T,
        log: &mut L,
    ) -> Result<(), Lost<T::Error>> {
        let reading = self.queue[0];
        let mut payload = [0u8; PAYLOAD_LEN];
        let mut tx = [0u8; TX_LEN];
        let encoded = write_reading(
            self.config.sensor_id,
            reading.seq,
            reading.adc,
            &mut payload,
        )
        .ok()
        .and_then(|len| {
            Publish {
                topic: self.config.topic,
                payload: &payload[..len],
                qos,
                retain: false,
            }
            .encode(&mut tx)
            .ok()
        });
        let Some(n) = encoded else {
            // Cannot happen with a sane configuration (sensor id, topic); never retry it forever.
            let _ = writeln!(log, "publish seq={}: does not encode, dropped", reading.seq);
            self.queue.copy_within(1.., 0);
            self.queued -= 1;
            self.in_flight = None;
            self.stats.dropped = self.stats.dropped.saturating_add(1);
            return Ok(());
        };
        let dup = matches!(qos, QoS::AtLeastOnce { dup: true, .. });
        let _ = writeln!(
            log,
            "publish seq={} adc={} -> {}{}",
            reading.seq,
            reading.adc,
            self.config.topic,
            if dup { " (dup)" } else { "" }
        );
        transport
            .send(&tx[..n])
            .map_err(|e| Lost(LostReason::Transport(e)))?;
        self.stats.publishes_sent = self.stats.publishes_sent.saturating_add(1);
        if let State::Connected { keep_alive } = &mut self.state {
            keep_alive.packet_sent(now_ms);
        }
        Ok(())
    }

    /// The next complete packet from the broker, `None` when none is complete yet.
    fn receive<T: Transport>(
        &mut self,
        transport: &mut T,
    ) -> Result<Option<Incoming>, Lost<T::Error>> {
        loop {
            match mqtt::decode(&self.rx[..self.rx_len]) {
                Ok((packet, used)) => {
                    let incoming = match packet {
                        Packet::ConnAck(ack) => Incoming::ConnAck(ack),
                        Packet::PubAck(id) => Incoming::PubAck(id),
                        Packet::PingResp => Incoming::PingResp,
                        Packet::SubAck(_) | Packet::Publish(_) => Incoming::Other,
                    };
                    self.rx.copy_within(used..self.rx_len, 0);
                    self.rx_len -= used;
                    return Ok(Some(incoming));
                }
                Err(e) if e.is_need_more() => {
                    if self.rx_len == RX_LEN {
                        return Err(Lost(LostReason::TooLarge));
                    }
                    let n = transport
                        .recv(&mut self.rx[self.rx_len..])
                        .map_err(|e| Lost(LostReason::Transport(e)))?;
                    if n == 0 {
                        return Ok(None);
                    }
                    self.rx_len = (self.rx_len + n).min(RX_LEN);
                }
                Err(e) => return Err(Lost(LostReason::Protocol(e))),
            }
        }
    }

    /// Close, count, back off.
    fn fail<T: Transport, L: Write>(
        &mut self,
        now_ms: u64,
        rng: u32,
        transport: &mut T,
        log: &mut L,
    ) {
        transport.close();
        self.rx_len = 0;
        // The reading stays queued; it is sent again (new packet id: clean session) after reconnecting.
        self.in_flight = None;
        self.stats.failures = self.stats.failures.saturating_add(1);
        let delay = self.backoff.next_delay_ms(rng);
        let _ = writeln!(log, "retry in {delay} ms");
        self.state = State::Disconnected {
            retry_at_ms: now_ms.saturating_add(delay),
        };
    }

    fn wait_ms(&self, now_ms: u64) -> u64 {
        let schedule = self.schedule.as_ref().map_or(0, |s| s.wait_ms(now_ms));
        let connection = match &self.state {
            State::Disconnected { retry_at_ms } => retry_at_ms.saturating_sub(now_ms),
            State::AwaitConnAck { since_ms } => self.config.rx_poll_ms.min(
                self.config
                    .connack_timeout_ms
                    .saturating_sub(now_ms.saturating_sub(*since_ms)),
            ),
            State::Connected { keep_alive } => {
                let retry = self
                    .in_flight
                    .as_ref()
                    .map_or(u64::MAX, |f| f.wait_ms(now_ms));
                self.config
                    .rx_poll_ms
                    .min(keep_alive.wait_ms(now_ms))
                    .min(retry)
            }
        };
        schedule.min(connection)
    }
}

#[cfg(test)]
mod tests;
