//! The sensor's code on the lx106 joins the real mosquitto over mutual TLS (`mtls_handshake_mosquitto`)
//! and refuses a broker whose certificate comes from another CA (`mtls_refuses_foreign_broker`).
//!
//! The host side is `tools/mtls-harness` (run by `run-qemu-tests.sh`): a site CA, mosquitto with the
//! site's generated broker configuration on 127.0.0.1, a second broker with another site's certificate,
//! a subscriber on `/esp8266`, and named pipes in QEMU's working directory that it bridges to the brokers:
//!
//! | pipe | direction | what |
//! |---|---|---|
//! | `mtls.csr` | node → host | the node's certificate request (PEM), signed by its chip |
//! | `mtls.identity` | host → node | the identity record ([`IdentityRecord`]) the site CA issued for it |
//! | `mtls.broker.tx` / `.rx` | both | the TCP stream to the site's broker |
//! | `mtls.foreign.tx` / `.rx` | both | the TCP stream to the broker of another CA |
//! | `mtls.delivered` | host → node | the payload the subscriber received |
//!
//! The secure element is the simulated ATECC608A doing real P-256 on the lx106 (GenKey, Sign, and both
//! ECDSA Verify of the handshake); on a chip those run in the ATECC, so the instruction counts are
//! reported with and without them.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use core::cell::{Cell, RefCell};
use core::ffi::CStr;

use tmc_atecc::sim::{Model, SimAtecc, SimDelay, SimI2c};
use tmc_firmware::coroutine::{Coroutine, State, NODE_STACK_BYTES};
use tmc_firmware::hw::clock::Clock;
use tmc_firmware::println;
use tmc_firmware::semihost::{HostFile, PipeSocket};
use tmc_node_tls::atecc::AteccElement;
use tmc_node_tls::csr::{csr_pem, write_csr, MAX_CSR_DER_LEN, MAX_CSR_PEM_LEN};
use tmc_node_tls::identity::{IdentityRecord, HEADER_LEN, SECTOR_LEN};
use tmc_node_tls::{SecureElement, TlsClient};
use tmc_sensor_core::node::{Node, NodeConfig, Transport, Wait};
use tmc_sensor_core::sim::SimSensor;

use tmc_firmware::chip_random::ChipRandom;

use tmc_hil_test::ensure;

/// The sensor's name: its certificate's CN and MQTT client id (the harness issues for it).
const NAME: &str = "esp1";
const BROKER_NAME: &str = "mqtt.com";
/// Always the same chip, so both checks hold the key the site certified.
const SERIAL: [u8; 9] = [0x01, 0x23, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0xEE];
/// How long `read_ready` waits for the broker when nothing is there: the time that passes between two
/// polls on a chip, so that the node's timeouts mean what they say.
const POLL_WAIT_US: u32 = 20_000;
/// Bound on the node's own clock: a reading acknowledged well within this, or the check fails.
const LIMIT_MS: u64 = 60_000;

/// A secure element that counts the CPU cycles it takes: on the real node they are spent inside the ATECC.
struct Counted<E> {
    inner: E,
    cycles: Cell<u64>,
}

impl<E: SecureElement> Counted<E> {
    fn timed<T>(&mut self, f: impl FnOnce(&mut E) -> T) -> T {
        let start = tmc_firmware::cycles();
        let out = f(&mut self.inner);
        let spent = tmc_firmware::cycles().wrapping_sub(start);
        self.cycles.set(self.cycles.get() + u64::from(spent));
        out
    }
}

impl<E: SecureElement> SecureElement for Counted<E> {
    type Error = E::Error;
    fn public_key(&mut self) -> Result<[u8; 64], E::Error> {
        self.timed(|e| e.public_key())
    }
    fn sign_digest(&mut self, digest: &[u8; 32]) -> Result<[u8; 64], E::Error> {
        self.timed(|e| e.sign_digest(digest))
    }
    fn verify_digest(
        &mut self,
        key: &[u8; 64],
        digest: &[u8; 32],
        signature: &[u8; 64],
    ) -> Result<bool, E::Error> {
        self.timed(|e| e.verify_digest(key, digest, signature))
    }
}

/// Instructions per CCOUNT cycle, measured: under `-icount shift=0` (run-qemu-tests.sh) QEMU runs one
/// instruction per virtual nanosecond and derives CCOUNT from virtual time at the core's configured
/// clock, so the ratio is a constant of the emulator (25 for the lx106 core's 40 MHz).
fn instructions_per_cycle() -> u64 {
    extern "C" {
        fn tmc_spin(n: u32);
    }
    const N: u32 = 1_000_000;
    let start = tmc_firmware::cycles();
    // SAFETY: a counted loop in rt/start.S that touches only a2.
    unsafe { tmc_spin(N) };
    let cycles = u64::from(tmc_firmware::cycles().wrapping_sub(start)).max(1);
    (2 * u64::from(N) + cycles / 2) / cycles
}

/// The chip with its device key in slot 0, as provisioning leaves it.
fn provisioned_chip() -> Result<SimAtecc, String> {
    let sim = SimAtecc::with_serial(Model::Atecc608a, SERIAL);
    tmc_atecc::Atecc::new(sim.i2c(), sim.delay())
        .generate_key(0)
        .map_err(|e| format!("GenKey slot 0: {e:?}"))?;
    Ok(sim)
}

/// Sends the chip's CSR to the host's CA and reads back the identity record it issued.
fn enroll(sim: &SimAtecc, sector: &mut [u8; SECTOR_LEN]) -> Result<usize, String> {
    let mut chip = tmc_atecc::Atecc::new(sim.i2c(), sim.delay());
    let mut element = AteccElement {
        chip: &mut chip,
        slot: 0,
    };
    let mut der = [0u8; MAX_CSR_DER_LEN];
    let n = write_csr(&mut element, NAME, &mut der).map_err(|e| format!("CSR: {e}"))?;
    let mut pem = [0u8; MAX_CSR_PEM_LEN];
    let m = csr_pem(&der[..n], &mut pem).map_err(|e| format!("CSR PEM: {e}"))?;
    HostFile::open_write(c"mtls.csr")
        .and_then(|mut f| f.write_all(&pem[..m]))
        .map_err(|e| {
            format!(
                "{e} on mtls.csr (run through run-qemu-tests.sh, which starts tools/mtls-harness)"
            )
        })?;
    read_identity(sector)
}

/// Reads one identity record from the host: its header says how long it is (the pipe is not closed
/// between two records).
fn read_identity(sector: &mut [u8; SECTOR_LEN]) -> Result<usize, String> {
    let mut pipe =
        HostFile::open_read(c"mtls.identity").map_err(|e| format!("{e} on mtls.identity"))?;
    pipe.read_exact(&mut sector[..HEADER_LEN])
        .map_err(|e| format!("{e} on mtls.identity"))?;
    let len = IdentityRecord::len_from_header(&sector[..HEADER_LEN])
        .map_err(|e| format!("identity from the host: {e}"))?;
    pipe.read_exact(&mut sector[HEADER_LEN..len])
        .map_err(|e| format!("{e} on mtls.identity"))?;
    Ok(len)
}

/// What the node's connection needs and what it found out: handed to and from the coroutine it runs on.
struct Session {
    sim: SimAtecc,
    sector: [u8; SECTOR_LEN],
    outcome: Result<Outcome, String>,
}

struct Outcome {
    /// CCOUNT cycles: TCP + TLS handshake (+ CONNECT), all until PUBACK, inside the chip.
    handshake: u64,
    total: u64,
    chip: u64,
}

/// The session the coroutine works on (one core, one check at a time).
struct SessionCell(RefCell<Option<Session>>);
// SAFETY: the lx106 has one core and the checks run one at a time; the cell is borrowed only by the check
// before and after the coroutine runs, and by the coroutine while it runs.
unsafe impl Sync for SessionCell {}
static SESSION: SessionCell = SessionCell(RefCell::new(None));

pub fn mtls_handshake_mosquitto() -> Result<(), String> {
    let sim = provisioned_chip()?;
    let mut sector = [0xFFu8; SECTOR_LEN];
    enroll(&sim, &mut sector)?;
    *SESSION.0.borrow_mut() = Some(Session {
        sim,
        sector,
        outcome: Err("the node did not run".into()),
    });
    // Exactly the SDK image's node stack, so that a handshake that needs more fails this check.
    let stack_bytes = NODE_STACK_BYTES;
    let stack = Box::leak(vec![0u32; stack_bytes / 4].into_boxed_slice());
    let mut node = Coroutine::new(stack, connect_and_publish);
    while node.resume().map_err(|e| format!("{e}"))? != State::Finished {}
    let session = SESSION.0.borrow_mut().take().ok_or("no session")?;
    let outcome = session.outcome?;

    let mut expected = [0u8; 64];
    let n = tmc_sensor_core::write_reading(NAME, 1, tmc_sensor_core::adc(NAME, 1), &mut expected)
        .map_err(|_| String::from("reading buffer"))?;
    let mut delivered = [0u8; 256];
    let m = HostFile::open_read(c"mtls.delivered")
        .and_then(|mut f| f.read_to_end(&mut delivered))
        .map_err(|e| format!("{e} on mtls.delivered"))?;
    ensure(delivered[..m] == expected[..n], || {
        format!(
            "the subscriber got {:?}, the node published {:?}",
            String::from_utf8_lossy(&delivered[..m]),
            String::from_utf8_lossy(&expected[..n])
        )
    })?;
    let per_cycle = instructions_per_cycle();
    let mega = |cycles: u64| {
        let tenths = cycles * per_cycle / 100_000;
        format!("{}.{}", tenths / 10, tenths % 10)
    };
    println!(
        "     mtls: TCP + TLS handshake {} M instructions, {} M of them in the simulated chip (its Sign/Verify: \
         the ATECC's work on a node), so {} M on the node's CPU; until the PUBACK {} M; node stack high-water \
         {} of {} bytes (TLS buffers {} of them) ({} instructions per CCOUNT cycle)",
        mega(outcome.handshake),
        mega(outcome.chip),
        mega(outcome.handshake.saturating_sub(outcome.chip)),
        mega(outcome.total),
        node.stack_used(),
        node.stack_len(),
        core::mem::size_of::<tmc_node_tls::TlsBuffers>(),
        per_cycle
    );
    Ok(())
}

/// The node's connection as the sensor runs it, on its own stack: TLS client over the pipes to the
/// site's broker, `Node::poll` until the first reading is acknowledged.
fn connect_and_publish() {
    let mut cell = SESSION.0.borrow_mut();
    let Some(session) = cell.as_mut() else {
        return;
    };
    session.outcome = run_node(&session.sim, &session.sector);
}

type SimElement<'c> = Counted<AteccElement<'c, SimI2c, SimDelay>>;
type NodeClient<'c> = TlsClient<'c, PipeSocket, SimElement<'c>, ChipRandom<'c, SimI2c, SimDelay>>;

/// The node's TLS client as the sensor builds it (identity from `sector`, key in `sim`'s slot 0, the
/// chip's Random), over the pipes `tx`/`rx` to one of the host's brokers; `f` uses it.
fn with_client<R>(
    sim: &SimAtecc,
    sector: &[u8; SECTOR_LEN],
    (tx, rx): (&'static CStr, &'static CStr),
    f: impl for<'c> FnOnce(&mut NodeClient<'c>) -> Result<R, String>,
) -> Result<R, String> {
    let record = IdentityRecord::decode(sector).map_err(|e| format!("identity: {e}"))?;
    let config = record
        .tls_config(BROKER_NAME)
        .map_err(|e| format!("site CA certificate: {e}"))?;
    let mut chip = tmc_atecc::Atecc::new(sim.i2c(), sim.delay());
    let random_chip = RefCell::new(tmc_atecc::Atecc::new(sim.i2c(), sim.delay()));
    let element = Counted {
        inner: AteccElement {
            chip: &mut chip,
            slot: 0,
        },
        cycles: Cell::new(0),
    };
    let socket = PipeSocket::new(tx, rx, POLL_WAIT_US);
    f(&mut TlsClient::new(
        config,
        socket,
        element,
        ChipRandom(&random_chip),
    ))
}

fn run_node(sim: &SimAtecc, sector: &[u8; SECTOR_LEN]) -> Result<Outcome, String> {
    with_client(
        sim,
        sector,
        (c"mtls.broker.tx", c"mtls.broker.rx"),
        |client| {
            let mut node = Node::new(NodeConfig::new(NAME, BROKER_NAME, NAME));
            let mut sensor = SimSensor::new(NAME);
            let mut log = String::new();
            let mut clock = Clock::with_source(tmc_firmware::cycles as fn() -> u32);
            let (mut now, mut rng) = (0u64, 0x2545_f491u32);
            let start = clock.cycles();
            let mut connected_at = None;
            {
                let mut transport = client.transport();
                while node.stats().acked == 0 && now < LIMIT_MS && !transport.is_spent() {
                    rng ^= rng << 13;
                    rng ^= rng >> 17;
                    rng ^= rng << 5;
                    let Wait(w) = node.poll(now, rng, &mut transport, &mut sensor, &mut log);
                    if connected_at.is_none() && transport.is_open() {
                        connected_at = Some(clock.cycles());
                    }
                    now += w.clamp(1, 1000);
                }
                transport.close();
            }
            let end = clock.cycles();
            ensure(node.stats().acked == 1, || {
                format!(
                    "no reading acknowledged within {LIMIT_MS} ms of node time; node log:\n{log}"
                )
            })?;
            Ok(Outcome {
                handshake: connected_at.unwrap_or(end) - start,
                total: end - start,
                chip: client.element_mut().cycles.get(),
            })
        },
    )
}

pub fn mtls_refuses_foreign_broker() -> Result<(), String> {
    let sim = provisioned_chip()?;
    let mut sector = [0xFFu8; SECTOR_LEN];
    read_identity(&mut sector)?;
    with_client(
        &sim,
        &sector,
        (c"mtls.foreign.tx", c"mtls.foreign.rx"),
        |client| match client.transport().connect() {
            Ok(()) => Err("connected to the broker of another CA".into()),
            Err(e) => {
                let reason = format!("{e}");
                println!("     refused: {reason}");
                ensure(
                    reason.contains("server certificate not from the site CA"),
                    || format!("wrong reason: {reason}"),
                )
            }
        },
    )
}

#[no_mangle]
pub extern "C" fn tmc_main() -> i32 {
    tmc_hil_test::run(
        "mtls",
        &[
            ("mtls_handshake_mosquitto", mtls_handshake_mosquitto),
            ("mtls_refuses_foreign_broker", mtls_refuses_foreign_broker),
        ],
    )
}
