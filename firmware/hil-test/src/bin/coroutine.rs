//! On-target checks of `tmc_firmware::coroutine` (the node's own stack under the NONOS SDK): the stack
//! switch in `rt/context.S`, and the stack the TLS handshake takes on it.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use core::hint::black_box;
use core::sync::atomic::{AtomicU32, Ordering};

use tmc_firmware::coroutine::{self, Coroutine, CoroutineError, State, STACK_PAINT};
use tmc_firmware::println;

use tmc_hil_test::ensure;

fn leak_stack(bytes: usize) -> &'static mut [u32] {
    Box::leak(vec![0u32; bytes / 4].into_boxed_slice())
}

/// Progress reported by the coroutine body, checked by the resumer.
static STEP: AtomicU32 = AtomicU32::new(0);
static RESULT: AtomicU32 = AtomicU32::new(0);
static NESTED: AtomicU32 = AtomicU32::new(0);

/// Recursion with a 64-word frame per level that is written (so painting sees it).
#[inline(never)]
fn deep(level: u32) -> u32 {
    let mut frame = [0u32; 64];
    for (i, w) in frame.iter_mut().enumerate() {
        *w = level.wrapping_mul(31).wrapping_add(i as u32);
    }
    let frame = black_box(frame);
    let below = if level == 0 { 0 } else { deep(level - 1) };
    frame.iter().fold(below, |a, w| a.wrapping_add(*w))
}

fn body() {
    // Locals that must survive every switch (some end up in a12..a15, some on this stack).
    let (a, b, c, d) = (
        black_box(0x1111_1111u32),
        black_box(0x2222_2222u32),
        black_box(3u32),
        black_box(4u32),
    );
    let mut acc = 0u32;
    for step in 1..=4 {
        acc = acc.wrapping_add(deep(black_box(step * 2)));
        STEP.store(step, Ordering::Relaxed);
        if coroutine::suspend().is_err() {
            return;
        }
        if (a, b, c, d) != (0x1111_1111, 0x2222_2222, 3, 4) {
            RESULT.store(0xBAD, Ordering::Relaxed);
            return;
        }
    }
    // A resume from inside a coroutine is refused.
    let mut inner = Coroutine::new(leak_stack(256), || {});
    NESTED.store(
        u32::from(inner.resume() == Err(CoroutineError::Nested)),
        Ordering::Relaxed,
    );
    RESULT.store(acc ^ a ^ b ^ c ^ d, Ordering::Relaxed);
}

/// Four suspensions with deep calls in between: the coroutine's and the resumer's values survive, the
/// high-water mark of the painted stack shows the deepest call, suspend outside a coroutine and nested
/// resumes are refused, a finished coroutine stays finished.
pub fn coroutine_stack_switch() -> Result<(), String> {
    ensure(
        coroutine::suspend() == Err(CoroutineError::NotInCoroutine),
        || "suspend outside a coroutine was not refused".into(),
    )?;
    let mut co = Coroutine::new(leak_stack(8192), body);
    ensure(co.stack_used() == 0, || {
        alloc::format!("fresh stack used {}", co.stack_used())
    })?;
    let mine = black_box([7u32, 8, 9, 10]);
    let mut marks = [0usize; 4];
    for step in 1..=4u32 {
        let state = co
            .resume()
            .map_err(|e| alloc::format!("resume {step}: {e}"))?;
        ensure(state == State::Suspended, || {
            alloc::format!("resume {step}: {state:?}")
        })?;
        ensure(STEP.load(Ordering::Relaxed) == step, || {
            alloc::format!("step {} after resume {step}", STEP.load(Ordering::Relaxed))
        })?;
        marks[step as usize - 1] = co.stack_used();
    }
    let state = co
        .resume()
        .map_err(|e| alloc::format!("last resume: {e}"))?;
    ensure(state == State::Finished, || {
        alloc::format!("after the body: {state:?}")
    })?;
    ensure(mine == [7, 8, 9, 10], || {
        "the resumer's locals changed".into()
    })?;
    let want = (1..=4u32).fold(0u32, |a, s| a.wrapping_add(deep(s * 2)))
        ^ 0x1111_1111
        ^ 0x2222_2222
        ^ 3
        ^ 4;
    ensure(RESULT.load(Ordering::Relaxed) == want, || {
        alloc::format!(
            "result {:#x}, want {want:#x}",
            RESULT.load(Ordering::Relaxed)
        )
    })?;
    ensure(NESTED.load(Ordering::Relaxed) == 1, || {
        "nested resume not refused".into()
    })?;
    // Deeper calls (9 levels of >= 256 B at step 4) leave a higher mark; never the whole stack.
    ensure(
        marks.windows(2).all(|w| w[0] <= w[1]) && marks[3] >= 9 * 256 && marks[3] < co.stack_len(),
        || alloc::format!("high-water marks {marks:?} of {}", co.stack_len()),
    )?;
    ensure(co.resume() == Ok(State::Finished), || {
        "resume after finish".into()
    })?;
    println!("     coroutine stack high-water marks {marks:?} bytes (paint {STACK_PAINT:#x})");
    Ok(())
}

/// The TLS client's side of a handshake against a canned ServerHello (P-256 key share = the generator,
/// so the client computes a real shared secret), then a record that cannot decrypt: the client generates
/// its ECDHE key, sends ClientHello, runs ECDH and the key schedule, fails at the first encrypted
/// record. The node's socket suspends the coroutine while it waits for bytes, as the SDK socket does.
struct CannedServer {
    written: usize,
    served: usize,
    waits: u32,
    rx: &'static [u8],
    pos: usize,
}

/// ServerHello (TLS 1.3, TLS_AES_128_GCM_SHA256, key share secp256r1 = G), then 32 bytes of
/// "application data" that do not decrypt.
const SERVER_FLIGHT: &[u8] = &[
    0x16, 0x03, 0x03, 0x00, 0x7B, // record: handshake, 123 bytes
    0x02, 0x00, 0x00, 0x77, // ServerHello, 119 bytes
    0x03, 0x03, // legacy version
    0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
    0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
    0x00, // session id: none
    0x13, 0x01, // TLS_AES_128_GCM_SHA256
    0x00, // compression
    0x00, 0x4F, // extensions, 79 bytes
    0x00, 0x2B, 0x00, 0x02, 0x03, 0x04, // supported_versions: TLS 1.3
    0x00, 0x33, 0x00, 0x45, 0x00, 0x17, 0x00, 0x41, 0x04, // key_share: secp256r1, 65 bytes
    0x6B, 0x17, 0xD1, 0xF2, 0xE1, 0x2C, 0x42, 0x47, 0xF8, 0xBC, 0xE6, 0xE5, 0x63, 0xA4, 0x40, 0xF2,
    0x77, 0x03, 0x7D, 0x81, 0x2D, 0xEB, 0x33, 0xA0, 0xF4, 0xA1, 0x39, 0x45, 0xD8, 0x98, 0xC2, 0x96,
    0x4F, 0xE3, 0x42, 0xE2, 0xFE, 0x1A, 0x7F, 0x9B, 0x8E, 0xE7, 0xEB, 0x4A, 0x7C, 0x0F, 0x9E, 0x16,
    0x2B, 0xCE, 0x33, 0x57, 0x6B, 0x31, 0x5E, 0xCE, 0xCB, 0xB6, 0x40, 0x68, 0x37, 0xBF, 0x51, 0xF5,
    0x17, 0x03, 0x03, 0x00, 0x20, // record: application data, 32 bytes
    0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
    0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
];

impl embedded_io::ErrorType for CannedServer {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for CannedServer {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        // Nothing before the ClientHello; then the flight arrives one "segment" per resume.
        while self.written == 0 || self.served == self.pos {
            if self.served == self.rx.len() {
                return Err(embedded_io::ErrorKind::ConnectionReset);
            }
            coroutine::suspend().map_err(|_| embedded_io::ErrorKind::Other)?;
            self.waits += 1;
            if self.written > 0 {
                self.served = (self.served + 64).min(self.rx.len());
            }
        }
        let n = buf.len().min(self.served - self.pos);
        buf[..n].copy_from_slice(&self.rx[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl embedded_io::Write for CannedServer {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.written += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl embedded_io::ReadReady for CannedServer {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        Ok(self.served > self.pos)
    }
}

impl tmc_node_tls::Socket for CannedServer {
    fn open(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
    fn close(&mut self) {}
}

static HANDSHAKE: AtomicU32 = AtomicU32::new(0);

/// The coroutine body: everything the SDK image keeps on the node's stack (the chip drivers, the TLS
/// client with its record buffers, the transport), then `connect`.
fn handshake_body() {
    use core::cell::RefCell;
    use tmc_firmware::chip_random::ChipRandom;
    use tmc_node_tls::{TlsClient, TlsClientConfig};
    use tmc_sensor_core::node::Transport;
    let sim = tmc_atecc::sim::SimAtecc::new(tmc_atecc::sim::Model::Atecc608a);
    let mut chip = tmc_atecc::Atecc::new(sim.i2c(), sim.delay());
    if chip.generate_key(0).is_err() {
        return;
    }
    let random_chip = RefCell::new(tmc_atecc::Atecc::new(sim.i2c(), sim.delay()));
    let element = tmc_node_tls::atecc::AteccElement {
        chip: &mut chip,
        slot: 0,
    };
    let config = TlsClientConfig {
        ca_public_key: [1; 64],
        server_name: "mqtt.com",
        client_cert_der: &[0x30, 0x00],
    };
    let socket = CannedServer {
        written: 0,
        served: 0,
        waits: 0,
        rx: SERVER_FLIGHT,
        pos: 0,
    };
    let mut client = TlsClient::new(config, socket, element, ChipRandom(&random_chip));
    let failed_after_ecdh = {
        let mut transport = client.transport();
        match transport.connect() {
            // The 32-byte record cannot decrypt under the keys the client derived.
            Err(tmc_node_tls::TlsTransportError::Handshake(_)) => true,
            Err(e) => {
                println!("     connect: {e}");
                false
            }
            Ok(()) => false,
        }
    };
    let socket = client.socket_mut();
    // Read past the ServerHello (the client consumed it and ran ECDH), waited at least once.
    let ok = failed_after_ecdh && socket.pos > 128 && socket.waits > 0 && socket.written > 100;
    HANDSHAKE.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
}

/// The TLS handshake on a coroutine stack: the client suspends while waiting for the server, computes
/// its ECDHE key and the shared secret, and the painted stack gives the high-water mark the SDK image's
/// node stack is sized from (README, "DRAM budget").
pub fn tls_handshake_on_coroutine() -> Result<(), String> {
    // Debug builds need far more than the release image's stack: as much as the heap spares (the
    // simulated chip allocates on it during the handshake).
    let free = tmc_hil_test::HEAP.capacity() - tmc_hil_test::HEAP.used();
    let bytes = free.saturating_sub(16 * 1024).min(64 * 1024) & !15;
    let mut co = Coroutine::new(leak_stack(bytes), handshake_body);
    let mut resumes = 0u32;
    loop {
        match co.resume().map_err(|e| alloc::format!("resume: {e}"))? {
            State::Finished => break,
            _ if resumes > 1000 => return Err("handshake did not finish in 1000 resumes".into()),
            _ => resumes += 1,
        }
    }
    ensure(HANDSHAKE.load(Ordering::Relaxed) == 1, || {
        alloc::format!(
            "handshake stage {} (1 = failed after ECDH, as it must)",
            HANDSHAKE.load(Ordering::Relaxed)
        )
    })?;
    println!(
        "     TLS handshake (to the first encrypted record) on the coroutine: stack high-water mark {} bytes \
         of {} (incl. TLS buffers {} + {}), {resumes} suspensions",
        co.stack_used(),
        co.stack_len(),
        tmc_node_tls::RX_BUFFER_LEN,
        tmc_node_tls::TX_BUFFER_LEN,
    );
    Ok(())
}

#[no_mangle]
pub extern "C" fn tmc_main() -> i32 {
    tmc_hil_test::run(
        "coroutine",
        &[
            ("coroutine_stack_switch", coroutine_stack_switch),
            ("tls_handshake_on_coroutine", tls_handshake_on_coroutine),
        ],
    )
}
