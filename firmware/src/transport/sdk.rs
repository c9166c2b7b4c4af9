//! Wi-Fi + plain TCP transport over Espressif's ESP8266 NONOS SDK v3.0.6
//! espconn API (feature `nonos-sdk`; bindings in `crate::sdk::ffi`).
//!
//! NOT TLS. The broker's mTLS (client key in the ATECC) needs a TLS stack
//! with a signing hook; that is later work. Until then an SDK build can only
//! reach a plain-TCP MQTT listener (bench bring-up), not the concentrator's
//! broker on 8883.
//!
//! Everything is non-blocking, driven by SDK callbacks and by [`pump`]
//! (called from the application's poll timer):
//!
//! - `connect` only starts: wait for Wi-Fi (`EVENT_STAMODE_GOT_IP`, see
//!   [`wifi_event`]), `espconn_gethostbyname`, then `espconn_connect`. Bytes
//!   the node sends meanwhile (CONNECT) wait in the send queue; the node's
//!   CONNACK timeout bounds the whole sequence.
//! - `send` queues; the queue goes out one `espconn_send` at a time: the SDK
//!   allows one send in flight (the next only after the sent callback) and,
//!   by default, keeps pointing into the caller's buffer until then
//!   (espconn.c: `tcp_write` without copy), so the chunk sits in a static
//!   buffer that is not touched until the sent callback.
//! - the receive callback appends to a fixed ring that `recv` drains; a full
//!   ring fails the connection (the node reconnects) rather than drop bytes.
//! - errors (DNS, connect, reset/abort/timeout via the reconnect callback,
//!   peer close, Wi-Fi loss) park the link in `Failed`; `recv`/`send` report
//!   it, the node closes and backs off.
//! - one static `espconn` is reused, so a new connection waits (`Busy`) until
//!   the previous one is fully gone (its disconnect/reconnect callback).
//!   `espconn_disconnect` is never called from an espconn callback (the SDK
//!   forbids it): `close` runs in the timer, a connection that completes
//!   after `close` is disconnected by the next [`pump`].
use core::ffi::{c_char, c_void};
use core::fmt;
use core::ptr::{addr_of_mut, null_mut};

use tmc_sensor_core::node::Transport;

use super::ring::ByteRing;
use crate::sdk::ffi::{self, EspTcp, Espconn, IpAddr};
use crate::sdk::{SdkStatic, TaskCell};

/// Broker replies are 4 bytes (CONNACK, PUBACK, PINGRESP); room for bursts.
const RX_LEN: usize = 512;
/// Queued outgoing packets (a PUBLISH is at most 256 bytes, see Node).
const TX_QUEUE_LEN: usize = 768;
/// Largest single `espconn_send`.
const TX_CHUNK: usize = 256;
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
    /// The send queue is full.
    TxFull,
    /// `espconn_send` refused (espconn error code).
    Send(i8),
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
            SdkError::TxFull => f.write_str("tcp: send queue full"),
            SdkError::Send(e) => write!(f, "tcp: send refused ({e})"),
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

/// The node's byte stream to the broker over the SDK (see the module doc).
pub struct SdkTransport {
    host: &'static str,
    port: u16,
}

impl SdkTransport {
    pub fn new(host: &'static str, port: u16) -> Self {
        SdkTransport { host, port }
    }
}

impl Transport for SdkTransport {
    type Error = SdkError;

    fn connect(&mut self) -> Result<(), SdkError> {
        let host = self.host.as_bytes();
        if host.is_empty() || host.len() > HOST_MAX || host.contains(&0) {
            return Err(SdkError::BadHost);
        }
        let port = self.port;
        let start = with_link(|l| {
            if l.connecting || l.live || l.closing {
                return Err(SdkError::Busy);
            }
            l.rx.clear();
            l.tx.clear();
            l.sending = false;
            l.port = port;
            l.phase = Phase::WaitWifi;
            Ok(l.wifi_up)
        })
        .unwrap_or(Err(SdkError::Busy))?;
        // SAFETY: no DNS request reads HOST now (phase was not Resolving).
        unsafe {
            let buf = &mut *HOST.get();
            buf[..host.len()].copy_from_slice(host);
            buf[host.len()] = 0;
        }
        if start {
            start_dns();
        }
        Ok(())
    }

    fn send(&mut self, data: &[u8]) -> Result<(), SdkError> {
        with_link(|l| match l.phase {
            Phase::Idle => Err(SdkError::NotConnected),
            Phase::Failed(e) => Err(e),
            _ if l.tx.push(data) => Ok(()),
            _ => Err(SdkError::TxFull),
        })
        .unwrap_or(Err(SdkError::Busy))?;
        flush();
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, SdkError> {
        with_link(|l| {
            let n = l.rx.pop(buf);
            match l.phase {
                // Bytes that arrived before a failure are delivered first.
                _ if n > 0 => Ok(n),
                Phase::Idle => Err(SdkError::NotConnected),
                Phase::Failed(e) => Err(e),
                _ => Ok(0),
            }
        })
        .unwrap_or(Ok(0))
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
        if disconnect {
            disconnect_now();
        }
    }
}
