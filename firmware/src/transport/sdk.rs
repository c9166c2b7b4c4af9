//! Wi-Fi + TCP byte stream over Espressif's ESP8266 NONOS SDK v3.0.6 espconn
//! API (feature `nonos-sdk`; bindings in `crate::sdk::ffi`): the socket under
//! the node's TLS client ([`SdkSocket`], a `tmc_node_tls::Socket`).
//!
//! Two halves:
//!
//! - the espconn state machine ([`Link`] and the SDK callbacks), non-blocking,
//!   driven by SDK callbacks and by [`pump`] (called from the application's
//!   poll timer);
//! - [`SdkSocket`], the blocking byte stream the TLS client needs. It only
//!   works inside the node's coroutine (`crate::coroutine`): where it would
//!   block it suspends the coroutine, the SDK runs its callbacks (which fill
//!   the receive ring, drain the send queue, report the connection), and the
//!   next poll tick resumes it. Outside a coroutine every wait fails
//!   ([`SdkError::NotInCoroutine`]) instead of hanging the SDK.
//!
//! The state machine:
//!
//! - `open` starts: wait for Wi-Fi (`EVENT_STAMODE_GOT_IP`, see
//!   [`wifi_event`]), `espconn_gethostbyname`, then `espconn_connect`, and
//!   waits (suspended) until connected or failed, at most [`OPEN_TIMEOUT_MS`].
//! - `write` queues ([`TX_QUEUE_LEN`], suspending while the queue is full);
//!   the queue goes out one `espconn_send` at a time: the SDK allows one send
//!   in flight (the next only after the sent callback) and, by default, keeps
//!   pointing into the caller's buffer until then (espconn.c: `tcp_write`
//!   without copy), so the chunk sits in a static buffer that is not touched
//!   until the sent callback.
//! - the receive callback appends to a fixed ring ([`RX_LEN`]) that `read`
//!   drains; a full ring fails the connection (the node reconnects) rather
//!   than drop bytes. Sizing: the broker only sends in answer to the node,
//!   and its largest burst is the handshake's first flight (ServerHello,
//!   EncryptedExtensions, CertificateRequest, Certificate with leaf + CA in
//!   one record of at most 1046 bytes under max_fragment_length 1024,
//!   CertificateVerify, Finished: ~1.5 KB with the site's certificates); the
//!   ring holds that whole flight, so it need not be drained before the next
//!   poll tick. (TLS then copies record by record into its own 1046-byte
//!   buffer.)
//! - errors (DNS, connect, reset/abort/timeout via the reconnect callback,
//!   peer close, Wi-Fi loss) park the link in `Failed`; reads and writes
//!   report it, the TLS client gives up, the node closes and backs off.
//! - one static `espconn` is reused, so a new connection waits until the
//!   previous one is fully gone (its disconnect/reconnect callback).
//!   `espconn_disconnect` is never called from an espconn callback (the SDK
//!   forbids it): `close` runs in the coroutine, which only the poll timer
//!   resumes; a connection that completes after `close` is disconnected by
//!   the next [`pump`].
use core::ffi::{c_char, c_void};
use core::fmt;
use core::ptr::{addr_of_mut, null_mut};

use super::ring::ByteRing;
use crate::coroutine;
use crate::sdk::ffi::{self, EspTcp, Espconn, IpAddr};
use crate::sdk::timing;
use crate::sdk::{SdkStatic, TaskCell};

/// Receive ring: the broker's largest burst, the TLS handshake's first flight (~1.5 KB), with margin
/// (module doc).
pub const RX_LEN: usize = 2048;
/// Send queue: the largest record the node sends, its Certificate record (`tmc_node_tls::TX_BUFFER_LEN`
/// = 640), fits whole; bigger writes wait for room.
pub const TX_QUEUE_LEN: usize = 768;
/// Largest single `espconn_send` (the in-flight chunk the SDK points into).
pub const TX_CHUNK: usize = 256;
/// Wi-Fi association, DHCP, DNS and TCP connect, all together.
pub const OPEN_TIMEOUT_MS: u32 = 30_000;
/// Longest wait for the broker's next bytes (inside a record, or during the handshake) or for send room.
pub const IO_TIMEOUT_MS: u32 = 20_000;
/// Longest broker host name (DNS names are at most 253 bytes; ours are short).
const HOST_MAX: usize = 63;

/// Why the link is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkError {
    NotConnected,
    /// The previous connection is still being torn down.
    Busy,
    /// Broker host empty, longer than 63 bytes or containing NUL.
    BadHost,
    /// `espconn_gethostbyname` refused (espconn error code).
    Dns(i8),
    /// The name did not resolve (or DNS timed out).
    DnsFailed,
    /// `espconn_connect` refused (espconn error code).
    Connect(i8),
    /// Connection failed or broke (reconnect callback, espconn error code:
    /// -3 timeout, -8 abort, -9 reset, -10 closed, ...).
    Tcp(i8),
    PeerClosed,
    WifiLost,
    /// The receive ring overflowed.
    RxOverflow,
    /// `espconn_send` refused (espconn error code).
    Send(i8),
    /// No connection within [`OPEN_TIMEOUT_MS`], or no bytes/send room within [`IO_TIMEOUT_MS`].
    Timeout,
    /// A blocking call outside the node's coroutine (it would hang the SDK).
    NotInCoroutine,
}

impl fmt::Display for SdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SdkError::NotConnected => f.write_str("tcp: not connected"),
            SdkError::Busy => f.write_str("tcp: previous connection still closing"),
            SdkError::BadHost => f.write_str("tcp: bad broker host name"),
            SdkError::Dns(e) => write!(f, "dns: request refused ({e})"),
            SdkError::DnsFailed => f.write_str("dns: name not resolved"),
            SdkError::Connect(e) => write!(f, "tcp: connect refused ({e})"),
            SdkError::Tcp(e) => write!(f, "tcp: connection failed ({e})"),
            SdkError::PeerClosed => f.write_str("tcp: closed by peer"),
            SdkError::WifiLost => f.write_str("wifi: disconnected"),
            SdkError::RxOverflow => f.write_str("tcp: receive buffer overflow"),
            SdkError::Send(e) => write!(f, "tcp: send refused ({e})"),
            SdkError::Timeout => f.write_str("tcp: timed out"),
            SdkError::NotInCoroutine => {
                f.write_str("tcp: blocking call outside the node's coroutine")
            }
        }
    }
}

impl core::error::Error for SdkError {}

impl embedded_io::Error for SdkError {
    fn kind(&self) -> embedded_io::ErrorKind {
        use embedded_io::ErrorKind;
        match self {
            SdkError::NotConnected | SdkError::WifiLost => ErrorKind::NotConnected,
            SdkError::Busy => ErrorKind::AddrInUse,
            SdkError::BadHost => ErrorKind::InvalidInput,
            SdkError::Dns(_) | SdkError::DnsFailed | SdkError::Connect(_) => {
                ErrorKind::ConnectionRefused
            }
            SdkError::Tcp(_) => ErrorKind::ConnectionReset,
            SdkError::PeerClosed => ErrorKind::ConnectionAborted,
            SdkError::RxOverflow => ErrorKind::OutOfMemory,
            SdkError::Send(_) => ErrorKind::BrokenPipe,
            SdkError::Timeout => ErrorKind::TimedOut,
            SdkError::NotInCoroutine => ErrorKind::Unsupported,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    WaitWifi,
    Resolving,
    Connecting,
    Connected,
    Failed(SdkError),
}

/// The espconn connection's state, shared by the SDK callbacks and [`SdkSocket`] (never borrowed across
/// a suspension).
struct Link {
    phase: Phase,
    port: u16,
    wifi_up: bool,
    /// `espconn_connect` issued, neither connect nor reconnect callback yet.
    connecting: bool,
    /// A TCP connection exists (connect callback, no disconnect/reconnect
    /// callback since).
    live: bool,
    /// `espconn_disconnect` issued, its disconnect callback not seen yet.
    closing: bool,
    /// Connected after `close`: disconnect it from the next `pump`.
    orphan: bool,
    /// An `espconn_send` is in flight: `TX_BUF` belongs to the SDK.
    sending: bool,
    rx: ByteRing<RX_LEN>,
    tx: ByteRing<TX_QUEUE_LEN>,
}

static LINK: TaskCell<Link> = TaskCell::new(Link {
    phase: Phase::Idle,
    port: 0,
    wifi_up: false,
    connecting: false,
    live: false,
    closing: false,
    orphan: false,
    sending: false,
    rx: ByteRing::new(),
    tx: ByteRing::new(),
});

// Memory the SDK holds pointers to: static, only used through raw pointers.
static TCP: SdkStatic<EspTcp> = SdkStatic::new(EspTcp {
    remote_port: 0,
    local_port: 0,
    local_ip: [0; 4],
    remote_ip: [0; 4],
    connect_callback: None,
    reconnect_callback: None,
    disconnect_callback: None,
    write_finish_fn: None,
});
static CONN: SdkStatic<Espconn> = SdkStatic::new(Espconn {
    kind: ffi::ESPCONN_TCP,
    state: ffi::ESPCONN_NONE,
    tcp: null_mut(),
    recv_callback: None,
    sent_callback: None,
    link_cnt: 0,
    reverse: null_mut(),
});
static DNS_ADDR: SdkStatic<IpAddr> = SdkStatic::new(IpAddr { addr: 0 });
static HOST: SdkStatic<[u8; HOST_MAX + 1]> = SdkStatic::new([0; HOST_MAX + 1]);
static TX_BUF: SdkStatic<[u8; TX_CHUNK]> = SdkStatic::new([0; TX_CHUNK]);

fn with_link<R>(f: impl FnOnce(&mut Link) -> R) -> Option<R> {
    LINK.with(f)
}

/// Wi-Fi station state from the application's event handler.
pub fn wifi_event(up: bool) {
    with_link(|l| {
        l.wifi_up = up;
        if !up
            && matches!(
                l.phase,
                Phase::Resolving | Phase::Connecting | Phase::Connected
            )
        {
            l.phase = Phase::Failed(SdkError::WifiLost);
        }
    });
}

/// Advances what callbacks cannot: starts DNS once Wi-Fi is up, disconnects
/// a connection that completed after `close`, sends queued bytes. Called
/// from the application's poll timer before `Node::poll`.
pub fn pump() {
    let (start, disconnect) = with_link(|l| {
        let start = l.phase == Phase::WaitWifi && l.wifi_up;
        let disconnect = l.orphan && l.live && !l.closing;
        if disconnect {
            l.orphan = false;
            l.closing = true;
        }
        (start, disconnect)
    })
    .unwrap_or((false, false));
    if disconnect {
        disconnect_now();
    }
    if start {
        start_dns();
    }
    flush();
}

fn disconnect_now() {
    // SAFETY: CONN is the static espconn the SDK knows; task context.
    let rc = unsafe { ffi::espconn_disconnect(CONN.get()) };
    if rc != ffi::ESPCONN_OK {
        // No disconnect callback will come; do not wait for it forever.
        with_link(|l| {
            l.closing = false;
            l.live = false;
            l.sending = false;
        });
    }
}

fn fail(error: SdkError) {
    with_link(|l| l.phase = Phase::Failed(error));
}

fn start_dns() {
    with_link(|l| l.phase = Phase::Resolving);
    // SAFETY: static espconn, NUL-terminated static host, static result; the
    // callback only runs later from the SDK's loop.
    let rc = unsafe {
        ffi::espconn_gethostbyname(
            CONN.get(),
            HOST.get().cast::<c_char>(),
            DNS_ADDR.get(),
            dns_found,
        )
    };
    match rc {
        // A literal address or a cached name: DNS_ADDR is filled already.
        ffi::ESPCONN_OK => {
            // SAFETY: written by the SDK before returning OK.
            let ip = unsafe { *DNS_ADDR.get() };
            start_tcp(ip);
        }
        ffi::ESPCONN_INPROGRESS => {}
        e => fail(SdkError::Dns(e)),
    }
}

extern "C" fn dns_found(_name: *const c_char, ip: *mut IpAddr, _arg: *mut c_void) {
    let resolving = with_link(|l| l.phase == Phase::Resolving).unwrap_or(false);
    if !resolving {
        // close() came first (or an older request): nothing waits for it.
        return;
    }
    if ip.is_null() {
        fail(SdkError::DnsFailed);
        return;
    }
    // SAFETY: non-null pointer to the SDK's result, valid for this call.
    let ip = unsafe { *ip };
    start_tcp(ip);
}

fn start_tcp(ip: IpAddr) {
    let Some(port) = with_link(|l| l.port) else {
        return;
    };
    let tcp = TCP.get();
    let conn = CONN.get();
    // SAFETY: no connection uses the statics (connect() checked that none is
    // live, connecting or closing); raw-pointer writes only; task context.
    let rc = unsafe {
        (*tcp).remote_ip = ip.addr.to_ne_bytes();
        (*tcp).remote_port = i32::from(port);
        (*tcp).local_port = ffi::espconn_port() as i32;
        (*conn).kind = ffi::ESPCONN_TCP;
        (*conn).state = ffi::ESPCONN_NONE;
        (*conn).tcp = tcp;
        ffi::espconn_regist_connectcb(conn, on_connect);
        ffi::espconn_regist_reconcb(conn, on_error);
        ffi::espconn_regist_disconcb(conn, on_disconnect);
        ffi::espconn_regist_recvcb(conn, on_recv);
        ffi::espconn_regist_sentcb(conn, on_sent);
        ffi::espconn_connect(conn)
    };
    with_link(|l| {
        if rc == ffi::ESPCONN_OK {
            l.connecting = true;
            l.phase = Phase::Connecting;
        } else {
            l.phase = Phase::Failed(SdkError::Connect(rc));
        }
    });
}

extern "C" fn on_connect(_arg: *mut c_void) {
    with_link(|l| {
        l.connecting = false;
        l.live = true;
        if l.phase == Phase::Connecting {
            l.phase = Phase::Connected;
        } else {
            l.orphan = true;
        }
    });
    // CONNECT is usually queued already; sending from the connect callback
    // is allowed (only disconnecting is not).
    flush();
}

extern "C" fn on_error(_arg: *mut c_void, err: i8) {
    // The SDK has dropped the connection; the espconn may be reused.
    with_link(|l| {
        l.connecting = false;
        l.live = false;
        l.closing = false;
        l.orphan = false;
        l.sending = false;
        if matches!(l.phase, Phase::Connecting | Phase::Connected) {
            l.phase = Phase::Failed(SdkError::Tcp(err));
        }
    });
}

extern "C" fn on_disconnect(_arg: *mut c_void) {
    with_link(|l| {
        l.live = false;
        l.closing = false;
        l.orphan = false;
        l.sending = false;
        if l.phase == Phase::Connected {
            l.phase = Phase::Failed(SdkError::PeerClosed);
        }
    });
}

extern "C" fn on_recv(_arg: *mut c_void, data: *mut c_char, len: u16) {
    if data.is_null() || len == 0 {
        return;
    }
    // SAFETY: the SDK passes `len` readable bytes, valid for this call.
    let bytes = unsafe { core::slice::from_raw_parts(data.cast::<u8>(), usize::from(len)) };
    with_link(|l| {
        if l.phase == Phase::Connected && !l.rx.push(bytes) {
            l.phase = Phase::Failed(SdkError::RxOverflow);
        }
    });
}

extern "C" fn on_sent(_arg: *mut c_void) {
    with_link(|l| l.sending = false);
    flush();
}

/// Hands the next chunk of the send queue to the SDK when none is in flight.
fn flush() {
    let n = with_link(|l| {
        if l.phase != Phase::Connected || !l.live || l.sending || l.tx.is_empty() {
            return 0;
        }
        // SAFETY: `sending` is false, so the SDK holds no pointer into TX_BUF.
        let buf = unsafe { &mut *TX_BUF.get() };
        let n = l.tx.pop(buf);
        l.sending = n > 0;
        n
    })
    .unwrap_or(0);
    if n == 0 {
        return;
    }
    // SAFETY: static espconn and buffer; TX_BUF stays untouched until the
    // sent callback clears `sending`. n <= TX_CHUNK fits u16.
    let rc = unsafe { ffi::espconn_send(CONN.get(), addr_of_mut!((*TX_BUF.get())[0]), n as u16) };
    if rc != ffi::ESPCONN_OK {
        with_link(|l| {
            l.sending = false;
            l.phase = Phase::Failed(SdkError::Send(rc));
        });
    }
}

/// Waits (suspending the node's coroutine) until `ready` says so, the link failed, or `timeout_ms` passed.
fn wait_until<R>(
    timeout_ms: u32,
    mut ready: impl FnMut(&mut Link) -> Option<Result<R, SdkError>>,
) -> Result<R, SdkError> {
    let start = timing::time_us();
    loop {
        if let Some(done) = with_link(&mut ready).flatten() {
            return done;
        }
        if timing::time_us().wrapping_sub(start) / 1000 >= timeout_ms {
            return Err(SdkError::Timeout);
        }
        coroutine::suspend().map_err(|_| SdkError::NotInCoroutine)?;
    }
}

/// The link's failure, if it failed (or was closed).
fn failure(l: &Link) -> Option<SdkError> {
    match l.phase {
        Phase::Idle => Some(SdkError::NotConnected),
        Phase::Failed(e) => Some(e),
        _ => None,
    }
}

/// The TCP byte stream to the broker under the TLS client (see the module doc): blocking calls suspend
/// the node's coroutine.
pub struct SdkSocket {
    host: &'static str,
    port: u16,
}

impl SdkSocket {
    pub fn new(host: &'static str, port: u16) -> Self {
        SdkSocket { host, port }
    }
}

impl embedded_io::ErrorType for SdkSocket {
    type Error = SdkError;
}

impl tmc_node_tls::Socket for SdkSocket {
    fn open(&mut self) -> Result<(), SdkError> {
        let host = self.host.as_bytes();
        if host.is_empty() || host.len() > HOST_MAX || host.contains(&0) {
            return Err(SdkError::BadHost);
        }
        // The previous connection on the one static espconn must be gone first.
        wait_until(OPEN_TIMEOUT_MS, |l| {
            (!(l.connecting || l.live || l.closing)).then_some(Ok(()))
        })?;
        let port = self.port;
        let start = with_link(|l| {
            l.rx.clear();
            l.tx.clear();
            l.sending = false;
            l.port = port;
            l.phase = Phase::WaitWifi;
            l.wifi_up
        })
        .ok_or(SdkError::Busy)?;
        // SAFETY: no DNS request reads HOST now (phase was not Resolving).
        unsafe {
            let buf = &mut *HOST.get();
            buf[..host.len()].copy_from_slice(host);
            buf[host.len()] = 0;
        }
        if start {
            start_dns();
        }
        let result = wait_until(OPEN_TIMEOUT_MS, |l| match l.phase {
            Phase::Connected => Some(Ok(())),
            Phase::Failed(e) => Some(Err(e)),
            _ => None,
        });
        if result.is_err() {
            self.close();
        }
        result
    }

    fn close(&mut self) {
        let disconnect = with_link(|l| {
            l.rx.clear();
            l.tx.clear();
            l.phase = Phase::Idle;
            // A connect still in progress becomes an orphan in on_connect.
            let disconnect = l.live && !l.closing;
            if disconnect {
                l.closing = true;
            }
            disconnect
        })
        .unwrap_or(false);
        // Task context (the poll timer resumed the coroutine), not an espconn callback.
        if disconnect {
            disconnect_now();
        }
    }
}

impl embedded_io::Read for SdkSocket {
    /// Waits for at least one byte. Bytes that arrived before a failure are delivered first. Feeds the
    /// watchdog on the way out: the TLS client's next step may be a P-256 multiplication (`timing`).
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, SdkError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = wait_until(IO_TIMEOUT_MS, |l| {
            let n = l.rx.pop(buf);
            if n > 0 {
                Some(Ok(n))
            } else {
                failure(l).map(Err)
            }
        })?;
        timing::feed_watchdog();
        Ok(n)
    }
}

impl embedded_io::ReadReady for SdkSocket {
    /// Whether `read` returns at once: bytes buffered, or the link failed.
    fn read_ready(&mut self) -> Result<bool, SdkError> {
        Ok(with_link(|l| !l.rx.is_empty() || failure(l).is_some()).unwrap_or(false))
    }
}

impl embedded_io::Write for SdkSocket {
    /// Queues as much of `data` as fits (waiting for room when none is free) and starts sending.
    fn write(&mut self, data: &[u8]) -> Result<usize, SdkError> {
        if data.is_empty() {
            return Ok(0);
        }
        let n = wait_until(IO_TIMEOUT_MS, |l| {
            if let Some(e) = failure(l) {
                return Some(Err(e));
            }
            let n = data.len().min(l.tx.free());
            (n > 0 && l.tx.push(&data[..n])).then_some(Ok(n))
        })?;
        flush();
        timing::feed_watchdog();
        Ok(n)
    }

    /// Hands the queue to the SDK; does not wait for the broker's acknowledgement (the sent callback
    /// sends the rest).
    fn flush(&mut self) -> Result<(), SdkError> {
        flush();
        with_link(|l| failure(l).map_or(Ok(()), Err)).unwrap_or(Ok(()))
    }
}
