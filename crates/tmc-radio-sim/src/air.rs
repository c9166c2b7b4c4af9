//! The air between processes: every process that joins the same directory gets a real-time channel with one
//! local chip, and hears what the chips of the other processes send.
//!
//! Each node binds the Unix datagram socket `DIR/<name>.sock`. When its chip starts a transmission, the packet
//! and the radio settings a receiver needs (carrier, modem registers, sync word, I/Q polarity) go as one small
//! datagram to every other socket in the directory. The receiving process puts the packet on its own air at
//! once, from a remote sender that is none of its chips; from there on its channel treats it like a local
//! packet: the chip locks after the preamble (or loses it, by its own loss setting), collides with overlapping
//! packets, and gets RxDone at the end of the time on air. Forwarding at the start of the transmission, not at
//! its end, is what keeps that timing: the sender's TxDone and the receiver's RxDone come at about the same
//! wall time, as on real radios, so acknowledgement timeouts behave as they would there.
//!
//! A killed process leaves its socket file behind: senders skip it (the send is refused), and a process that
//! joins under the same name replaces it. Datagrams that do not decode are counted and dropped.
//!
//! Wire format of a datagram (version 2), all integers big-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `TMCA` |
//! | 4 | version, 2 |
//! | 5..9 | carrier frequency, Hz (u32) |
//! | 9, 10, 11 | RegModemConfig1, 2, 3 |
//! | 12..14 | preamble length, symbols (u16) |
//! | 14 | sync word |
//! | 15 | flags: bit 0 = inverted I/Q, other bits 0 |
//! | 16..20 | sender: the node's identity on the air, random per join (u32) |
//! | 20.. | payload (0..=255 bytes) |
//!
//! The sender lets a receiving process end that node's previous packet when its next one starts (a radio
//! sends one at a time): a datagram that arrived late would otherwise overlap the next one and collide.

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io;
use std::net::Shutdown;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use thiserror::Error;
use tmc_radio::modem::ModemConfig;

use crate::chip::AirParams;
use crate::world::Emission;
use crate::{ChannelConfig, ChannelStats, SimChannel, SimChip};

/// What a node's socket file name ends with.
pub const SOCKET_SUFFIX: &str = ".sock";

const MAGIC: [u8; 4] = *b"TMCA";
const VERSION: u8 = 2;
const HEADER_LEN: usize = 20;
const MAX_PAYLOAD: usize = 255;
/// The longest valid datagram.
pub(crate) const MAX_DATAGRAM: usize = HEADER_LEN + MAX_PAYLOAD;
const FLAG_INVERT_IQ: u8 = 0x01;
/// Larger than any valid datagram, so a datagram that fills it was truncated and is malformed.
pub(crate) const RECEIVE_BUFFER: usize = 512;
/// How often the reader looks whether it should stop, should the shutdown not wake it.
const READ_POLL: Duration = Duration::from_millis(200);

/// Where and how to join the air: `sim:DIR` or `sim:DIR,loss=0.2,corrupt=0.01,seed=7` (the `sim:` prefix is
/// optional). The directory cannot contain a comma.
#[derive(Clone, Debug, PartialEq)]
pub struct AirSpec {
    /// Directory of the node sockets; created if missing.
    pub dir: PathBuf,
    /// Probability that this node misses a packet it would hear (`loss=`).
    pub loss: f64,
    /// Probability that a packet this node receives fails its CRC (`corrupt=`).
    pub corruption: f64,
    /// Seed of this node's loss and corruption draws (`seed=`).
    pub seed: u64,
}

impl AirSpec {
    /// A lossless air in `dir`, seed 0.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            loss: 0.0,
            corruption: 0.0,
            seed: 0,
        }
    }

    /// The configuration of this node's channel.
    pub fn channel_config(&self) -> ChannelConfig {
        ChannelConfig {
            seed: self.seed,
            loss: self.loss,
            corruption: self.corruption,
            ..ChannelConfig::default()
        }
    }
}

impl fmt::Display for AirSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sim:{},loss={},corrupt={},seed={}",
            self.dir.display(),
            self.loss,
            self.corruption,
            self.seed
        )
    }
}

/// An [`AirSpec`] that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum AirSpecError {
    /// Nothing before the first comma.
    #[error(
        "air spec {spec:?} names no directory (expected sim:DIR[,loss=P][,corrupt=P][,seed=N])"
    )]
    EmptyDir {
        /// The whole spec.
        spec: String,
    },
    /// An option without `=`.
    #[error("air spec {spec:?}: option {part:?} is not key=value (keys: loss, corrupt, seed)")]
    NotKeyValue {
        /// The whole spec.
        spec: String,
        /// The option.
        part: String,
    },
    /// An option this parser does not know.
    #[error("air spec {spec:?}: unknown option {key:?} (keys: loss, corrupt, seed)")]
    UnknownKey {
        /// The whole spec.
        spec: String,
        /// The key.
        key: String,
    },
    /// An option given twice.
    #[error("air spec {spec:?}: option {key} is given twice")]
    DuplicateKey {
        /// The whole spec.
        spec: String,
        /// The key.
        key: String,
    },
    /// `loss` or `corrupt` outside 0..=1 or not a number.
    #[error("air spec {spec:?}: {key}={value:?} is not a probability between 0 and 1")]
    BadProbability {
        /// The whole spec.
        spec: String,
        /// `loss` or `corrupt`.
        key: String,
        /// The value given.
        value: String,
    },
    /// `seed` is not an unsigned 64-bit integer.
    #[error("air spec {spec:?}: seed={value:?} is not an unsigned 64-bit integer")]
    BadSeed {
        /// The whole spec.
        spec: String,
        /// The value given.
        value: String,
    },
}

impl FromStr for AirSpec {
    type Err = AirSpecError;

    fn from_str(s: &str) -> Result<Self, AirSpecError> {
        let spec = || s.to_owned();
        let body = s.strip_prefix("sim:").unwrap_or(s);
        let mut parts = body.split(',');
        let dir = parts.next().unwrap_or_default();
        if dir.trim().is_empty() {
            return Err(AirSpecError::EmptyDir { spec: spec() });
        }
        let mut air = AirSpec::new(dir);
        let mut seen: Vec<&str> = Vec::new();
        for part in parts {
            let Some((key, value)) = part.split_once('=') else {
                return Err(AirSpecError::NotKeyValue {
                    spec: spec(),
                    part: part.to_owned(),
                });
            };
            let (key, value) = (key.trim(), value.trim());
            let probability = || match value.parse::<f64>() {
                Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
                _ => Err(AirSpecError::BadProbability {
                    spec: spec(),
                    key: key.to_owned(),
                    value: value.to_owned(),
                }),
            };
            match key {
                "loss" => air.loss = probability()?,
                "corrupt" | "corruption" => air.corruption = probability()?,
                "seed" => {
                    air.seed = value.parse().map_err(|_| AirSpecError::BadSeed {
                        spec: spec(),
                        value: value.to_owned(),
                    })?;
                }
                _ => {
                    return Err(AirSpecError::UnknownKey {
                        spec: spec(),
                        key: key.to_owned(),
                    })
                }
            }
            // "corruption" is an alias: both spellings count as one key.
            let canonical = if key == "corruption" { "corrupt" } else { key };
            if seen.contains(&canonical) {
                return Err(AirSpecError::DuplicateKey {
                    spec: spec(),
                    key: canonical.to_owned(),
                });
            }
            seen.push(canonical);
        }
        Ok(air)
    }
}

/// Joining the air failed.
#[derive(Debug, Error)]
pub enum AirError {
    /// The node name cannot be a socket file name.
    #[error("air node name {name:?} is not usable: {reason}")]
    BadName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A live process already uses the name.
    #[error("air node {name:?} is already on the air: its socket {} answers", path.display())]
    NameInUse {
        /// The name.
        name: String,
        /// Its socket.
        path: PathBuf,
    },
    /// A file-system or socket operation failed.
    #[error("air: cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> AirError {
    let path = path.to_path_buf();
    move |source| AirError::Io {
        action,
        path,
        source,
    }
}

/// Counters of one node: its channel's, and the datagrams it exchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AirStats {
    /// The local channel (transmissions of the local chip; receptions of packets from every node).
    pub channel: ChannelStats,
    /// Datagrams handed to another node's socket.
    pub sent: u64,
    /// Datagrams that could not be handed over (a killed node's socket, a full queue, an unreadable directory).
    pub send_failures: u64,
    /// Packets received from other nodes and put on the local air.
    pub received: u64,
    /// Datagrams dropped because they did not decode.
    pub malformed: u64,
}

/// Datagram counters of a node, shared with its threads. The bridge uses the same ones for what it hands to
/// the nodes of its directory.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) sent: AtomicU64,
    pub(crate) send_failures: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) malformed: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A node on the air: its simulated chip (build the driver on it) and the link to the other processes.
pub struct AirChip {
    /// The local chip, on a real-time channel.
    pub chip: SimChip,
    /// The link; keep it while the radio is in use (dropping it leaves the air). It is a separate field so that
    /// the chip can be moved into a driver while the link stays.
    pub link: AirLink,
}

impl AirChip {
    /// The local real-time channel.
    pub fn channel(&self) -> &SimChannel {
        self.link.channel()
    }

    /// Counters.
    pub fn stats(&self) -> AirStats {
        self.link.stats()
    }
}

/// A node's socket and the thread that reads it. Dropping it stops the thread, stops forwarding the local
/// chip's transmissions and removes the socket file.
pub struct AirLink {
    channel: SimChannel,
    counters: Arc<Counters>,
    socket: NodeSocket,
}

impl AirLink {
    /// The local real-time channel.
    pub fn channel(&self) -> &SimChannel {
        &self.channel
    }

    /// The node name.
    pub fn name(&self) -> &str {
        self.socket.name()
    }

    /// The node's socket file.
    pub fn socket_path(&self) -> &Path {
        self.socket.path()
    }

    /// Counters.
    pub fn stats(&self) -> AirStats {
        AirStats {
            channel: self.channel.stats(),
            sent: self.counters.sent.load(Ordering::Relaxed),
            send_failures: self.counters.send_failures.load(Ordering::Relaxed),
            received: self.counters.received.load(Ordering::Relaxed),
            malformed: self.counters.malformed.load(Ordering::Relaxed),
        }
    }
}

impl fmt::Debug for AirLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AirLink")
            .field("name", &self.name())
            .field("path", &self.socket_path())
            .finish_non_exhaustive()
    }
}

impl Drop for AirLink {
    fn drop(&mut self) {
        // Before the socket goes (a field, dropped after this): no more transmissions to forward.
        self.channel.shared.set_transmit_hook(None);
    }
}

/// Joins the air in `spec.dir` as `name` (e.g. `relay-10`, `gateway-1`): a real-time [`SimChannel`] with one
/// local chip, configured by `spec`, bridged to every other node in the directory. Creates the directory if
/// missing and replaces a socket left by a killed node of the same name; a live node of that name is an error.
pub fn join(spec: &AirSpec, name: &str) -> Result<AirChip, AirError> {
    let channel = SimChannel::realtime(spec.channel_config());
    let chip = channel.add_chip();
    let counters = Arc::new(Counters::default());
    let (socket, broadcaster) = NodeSocket::open(&spec.dir, name, {
        let (channel, counters) = (channel.clone(), counters.clone());
        move |datagram| match decode(datagram) {
            Some((sender, emission)) => {
                channel.shared.inject(sender, emission);
                // Counted after the packet is on air, so that a test that sees the count sees the packet.
                bump(&counters.received);
            }
            None => bump(&counters.malformed),
        }
    })?;
    let hook_counters = counters.clone();
    let identity = fastrand::u32(..);
    channel
        .shared
        .set_transmit_hook(Some(Box::new(move |emission| {
            broadcaster.send(&encode(identity, emission), &hook_counters);
        })));
    Ok(AirChip {
        chip,
        link: AirLink {
            channel,
            counters,
            socket,
        },
    })
}

/// A node's socket `DIR/<name>.sock` and the thread that reads it: what a chip's [`AirLink`] and the bridge
/// have in common. Dropping it stops the thread and removes the socket file.
pub(crate) struct NodeSocket {
    name: String,
    path: PathBuf,
    /// Device and inode of our socket file, so that dropping removes only our own, not a successor's.
    file_id: Option<(u64, u64)>,
    stop: Arc<AtomicBool>,
    /// A handle on the bound socket, to wake the reader by shutting it down.
    waker: Option<UnixDatagram>,
    reader: Option<JoinHandle<()>>,
}

impl NodeSocket {
    /// Binds `dir/<name>.sock` (creating `dir` if missing, replacing a socket left by a killed node) and starts
    /// a thread that hands every datagram it receives to `on_datagram`, undecoded. Returns the socket and a
    /// [`Broadcaster`] to the other nodes of `dir`.
    pub(crate) fn open(
        dir: &Path,
        name: &str,
        mut on_datagram: impl FnMut(&[u8]) + Send + 'static,
    ) -> Result<(NodeSocket, Broadcaster), AirError> {
        check_name(name)?;
        fs::create_dir_all(dir).map_err(io_error("create air directory", dir))?;
        let own_file = OsString::from(format!("{name}{SOCKET_SUFFIX}"));
        let path = dir.join(&own_file);
        let socket = bind(&path, name)?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut node = NodeSocket {
            name: name.to_owned(),
            file_id: file_id(&path),
            path,
            stop: stop.clone(),
            waker: socket.try_clone().ok(),
            reader: None,
        };
        // From here on an error drops `node`, which removes the socket file.
        socket
            .set_read_timeout(Some(READ_POLL))
            .map_err(io_error("set a read timeout on", &node.path))?;
        // Non-blocking: a chip's transmit hook runs with its world locked, and a peer that does not read must
        // not stall us.
        let sender = UnixDatagram::unbound().map_err(io_error("open a socket for", dir))?;
        sender
            .set_nonblocking(true)
            .map_err(io_error("make non-blocking a socket for", dir))?;
        let reader = std::thread::Builder::new()
            .name(format!("air-{name}"))
            .spawn(move || read_loop(&socket, &stop, &mut on_datagram))
            .map_err(io_error("start the reader thread for", &node.path))?;
        node.reader = Some(reader);
        let broadcaster = Broadcaster {
            sender,
            dir: dir.to_path_buf(),
            own_file,
        };
        Ok((node, broadcaster))
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for NodeSocket {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(waker) = &self.waker {
            // Wakes a reader blocked in recv; READ_POLL is the fallback.
            waker.shutdown(Shutdown::Both).ok();
        }
        if let Some(reader) = self.reader.take() {
            reader.join().ok();
        }
        if self.file_id.is_some() && file_id(&self.path) == self.file_id {
            fs::remove_file(&self.path).ok();
        }
    }
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn check_name(name: &str) -> Result<(), AirError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.contains('/') {
        "it contains '/'"
    } else if name.contains('\0') {
        "it contains a NUL byte"
    } else if name == "." || name == ".." {
        "it is a directory name"
    } else {
        return Ok(());
    };
    Err(AirError::BadName {
        name: name.to_owned(),
        reason,
    })
}

/// Binds `path`, replacing a socket file nobody listens on (left by a killed process).
fn bind(path: &Path, name: &str) -> Result<UnixDatagram, AirError> {
    match UnixDatagram::bind(path) {
        Ok(socket) => return Ok(socket),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {}
        Err(e) => return Err(io_error("bind", path)(e)),
    }
    // Connecting succeeds only if a live socket is bound there; a dead one refuses.
    let probe = UnixDatagram::unbound().map_err(io_error("open a socket to probe", path))?;
    if probe.connect(path).is_ok() {
        return Err(AirError::NameInUse {
            name: name.to_owned(),
            path: path.to_path_buf(),
        });
    }
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error("remove the stale socket", path)(e)),
    }
    UnixDatagram::bind(path).map_err(io_error("bind", path))
}

/// Sends datagrams from one node to every other node's socket in its directory.
pub(crate) struct Broadcaster {
    sender: UnixDatagram,
    dir: PathBuf,
    /// The sending node's own socket file, which is skipped.
    own_file: OsString,
}

impl Broadcaster {
    /// Sends `datagram` to every other node's socket, counting each hand-over or failure.
    pub(crate) fn send(&self, datagram: &[u8], counters: &Counters) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            bump(&counters.send_failures);
            return;
        };
        for entry in entries.flatten() {
            let file = entry.file_name();
            let is_node = file != self.own_file
                && file.to_str().is_some_and(|f| f.ends_with(SOCKET_SUFFIX))
                && entry.file_type().is_ok_and(|t| t.is_socket());
            if !is_node {
                continue;
            }
            // A killed node's socket refuses (or is gone): its packets are simply not heard, as with a dead
            // radio.
            match self.sender.send_to(datagram, entry.path()) {
                Ok(_) => bump(&counters.sent),
                Err(_) => bump(&counters.send_failures),
            }
        }
    }
}

/// Hands every datagram received on `socket` to `on_datagram` until `stop` is set. A datagram longer than the
/// buffer arrives cut to its length, which no valid datagram reaches, so decoding rejects it.
fn read_loop(socket: &UnixDatagram, stop: &AtomicBool, on_datagram: &mut impl FnMut(&[u8])) {
    let mut buf = [0u8; RECEIVE_BUFFER];
    while !stop.load(Ordering::SeqCst) {
        match socket.recv(&mut buf) {
            Ok(n) => {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                on_datagram(buf.get(..n).unwrap_or(&buf));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            // The socket is unusable (it never is in practice): stop rather than spin.
            Err(_) => break,
        }
    }
}

fn encode(sender: u32, emission: &Emission) -> Vec<u8> {
    let Emission {
        modem,
        air,
        payload,
    } = emission;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&air.frequency_hz.to_be_bytes());
    out.push(modem.reg_modem_config1());
    out.push(modem.reg_modem_config2());
    out.push(modem.reg_modem_config3());
    out.extend_from_slice(&modem.preamble_len.to_be_bytes());
    out.push(air.sync_word);
    out.push(if air.invert_iq { FLAG_INVERT_IQ } else { 0 });
    out.extend_from_slice(&sender.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The sender and the packet of a datagram, or `None` if it is not a valid one.
pub(crate) fn decode(bytes: &[u8]) -> Option<(u32, Emission)> {
    let (header, payload) = bytes.split_at_checked(HEADER_LEN)?;
    let [m0, m1, m2, m3, version, f0, f1, f2, f3, config1, config2, config3, p0, p1, sync_word, flags, s0, s1, s2, s3] =
        <[u8; HEADER_LEN]>::try_from(header).ok()?;
    if [m0, m1, m2, m3] != MAGIC
        || version != VERSION
        || flags & !FLAG_INVERT_IQ != 0
        || payload.len() > MAX_PAYLOAD
    {
        return None;
    }
    let modem =
        ModemConfig::from_registers(config1, config2, config3, u16::from_be_bytes([p0, p1]))
            .ok()?;
    let air = AirParams {
        frequency_hz: u32::from_be_bytes([f0, f1, f2, f3]),
        spreading_factor: modem.spreading_factor,
        bandwidth: modem.bandwidth,
        sync_word,
        explicit_header: modem.explicit_header,
        invert_iq: flags & FLAG_INVERT_IQ != 0,
    };
    Some((
        u32::from_be_bytes([s0, s1, s2, s3]),
        Emission {
            modem,
            air,
            payload: payload.to_vec(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tmc_radio::modem::SpreadingFactor;

    fn emission() -> Emission {
        let modem = ModemConfig::RADIOHEAD_DEFAULT.with_spreading_factor(SpreadingFactor::Sf12);
        Emission {
            modem,
            air: AirParams {
                frequency_hz: 869_525_000,
                spreading_factor: modem.spreading_factor,
                bandwidth: modem.bandwidth,
                sync_word: 0x34,
                explicit_header: true,
                invert_iq: true,
            },
            payload: b"hello".to_vec(),
        }
    }

    #[test]
    fn datagrams_round_trip() {
        let e = emission();
        let bytes = encode(7, &e);
        assert_eq!(bytes.len(), HEADER_LEN + 5);
        let (sender, back) = decode(&bytes).unwrap();
        assert_eq!(sender, 7);
        assert_eq!(back.air, e.air);
        assert_eq!(back.payload, e.payload);
        assert_eq!(
            back.modem.low_data_rate_optimize_on(),
            e.modem.low_data_rate_optimize_on()
        );
        assert_eq!(
            tmc_radio::airtime::time_on_air(&back.modem, 5),
            tmc_radio::airtime::time_on_air(&e.modem, 5)
        );
    }

    #[test]
    fn bad_datagrams_do_not_decode() {
        let good = encode(7, &emission());
        assert!(decode(&good[..HEADER_LEN - 1]).is_none());
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(decode(&bad).is_none());
        let mut bad = good.clone();
        bad[4] = 1;
        assert!(decode(&bad).is_none());
        let mut bad = good.clone();
        bad[10] = 0x64; // SF6
        assert!(decode(&bad).is_none());
        let mut bad = good.clone();
        bad[15] = 0x80;
        assert!(decode(&bad).is_none());
        let mut bad = good;
        bad.resize(HEADER_LEN + 256, 0);
        assert!(decode(&bad).is_none());
    }
}
