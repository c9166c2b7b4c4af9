//! The node as the SDK image runs it: `Node::poll` with the mutual-TLS transport, inside the coroutine
//! (`crate::coroutine`) that `sdk::app`'s 50 ms poll timer resumes. Everything the connection needs
//! lives in this coroutine's frames (chip drivers, TLS client with its record buffers, the node), so its
//! stack ([`NODE_STACK_BYTES`]) is the node's whole working memory besides the socket's buffers.
//!
//! Boot: the provisioning console is offered for a few seconds (`sdk::provisioning`); then the identity
//! is read from its flash sector (`identity_store`); none → one console line and the console again, the
//! node does not connect until it has one. Then the ATECC (bit-banged I²C,
//! GPIO14/12) signs with slot 0 and its Random feeds the TLS client; `connect` runs at 160 MHz
//! ([`BoostedConnect`], numbers in `sdk::timing`).
use core::cell::RefCell;
use core::fmt::Write;

use tmc_atecc::Atecc;
use tmc_node_tls::atecc::AteccElement;
use tmc_node_tls::{TlsClient, TlsClientConfig};
use tmc_sensor_core::node::{Node, NodeConfig, Transport};

use super::identity_store::{self, Identity};
use super::provisioning;
use super::timing::{self, SdkDelay};
use super::SdkAdc;
use crate::chip_random::ChipRandom;
use crate::config;
use crate::coroutine;
use crate::hw::clock::Clock;
use crate::hw::gpio::I2cPins;
use crate::hw::uart::Uart0;
use crate::transport::sdk::SdkSocket;
use tmc_soft_i2c::BitBangI2c;

/// The coroutine's stack: see [`crate::coroutine::NODE_STACK_BYTES`].
pub use crate::coroutine::NODE_STACK_BYTES;

/// The ATECC's slot with the node's private key (GenKey'd by the provisioning console, `make
/// provision-sensor`, or by `make sensor-identity` with the chip on a PC's I²C bus).
pub const KEY_SLOT: u8 = 0;

fn suspend() {
    // Only ever runs inside the node's coroutine (its entry is `run`).
    let _ = coroutine::suspend();
}

/// The coroutine's entry (never returns).
pub fn run() {
    let _ = writeln!(
        Uart0,
        "console: type {} within {} s to provision this node",
        tmc_node_console::ENTER_COMMAND,
        provisioning::BOOT_WINDOW_MS / 1000
    );
    provisioning::offer(Some(provisioning::BOOT_WINDOW_MS));
    let identity = loop {
        match identity_store::load() {
            Ok(identity) => break identity,
            Err(e) => {
                let _ = writeln!(Uart0, "identity: none ({e}): provision this node");
                // The console is all a node without identity can do.
                provisioning::offer(None);
            }
        }
    };
    let _ = writeln!(
        Uart0,
        "identity: certificate {} bytes, site CA pinned, broker {}:{} (mutual TLS)",
        identity.cert_der().len(),
        config::BROKER_HOST,
        config::BROKER_PORT
    );
    connect_forever(&identity)
}

/// The transport with the CPU at 160 MHz during `connect` (TCP + TLS handshake), 80 MHz otherwise.
struct BoostedConnect<T>(T);

impl<T: Transport> Transport for BoostedConnect<T> {
    type Error = T::Error;

    fn connect(&mut self) -> Result<(), T::Error> {
        let boosted = timing::set_cpu_mhz(timing::CPU_MHZ_HANDSHAKE);
        let result = self.0.connect();
        if boosted {
            timing::set_cpu_mhz(timing::CPU_MHZ_DEFAULT);
        }
        result
    }
    fn send(&mut self, data: &[u8]) -> Result<(), T::Error> {
        self.0.send(data)
    }
    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, T::Error> {
        self.0.recv(buf)
    }
    fn close(&mut self) {
        self.0.close()
    }
}

fn node_config() -> NodeConfig<'static> {
    let mut node_config =
        NodeConfig::new(config::CLIENT_ID, config::BROKER_HOST, config::CLIENT_ID);
    node_config.port = config::BROKER_PORT;
    node_config.topic = config::TOPIC;
    node_config.interval_ms = config::INTERVAL_MS;
    node_config
}

fn connect_forever(identity: &Identity) -> ! {
    // Two drivers over the same two pins: one signs and verifies, one draws randomness; they never run
    // at the same time (the TLS client asks for randomness between its other chip calls), and each
    // command wakes the chip and puts it back to idle.
    let delay = SdkDelay;
    let mut chip = Atecc::new(BitBangI2c::new(I2cPins::init(), delay, 100_000), delay);
    let random_chip = RefCell::new(Atecc::new(
        BitBangI2c::new(I2cPins::init(), delay, 100_000),
        delay,
    ));
    let element = AteccElement {
        chip: &mut chip,
        slot: KEY_SLOT,
    };
    let tls_config = TlsClientConfig {
        ca_public_key: identity.ca_public_key,
        server_name: config::BROKER_HOST,
        client_cert_der: identity.cert_der(),
    };
    let socket = SdkSocket::new(config::BROKER_HOST, config::BROKER_PORT);
    let mut client = TlsClient::new(tls_config, socket, element, ChipRandom(&random_chip));
    let mut node = Node::new(node_config());
    let mut sensor = SdkAdc;
    // system_get_time() is in µs and wraps every 71 minutes; Clock extends it (read every tick).
    let mut clock = Clock::with_source(timing::time_us as fn() -> u32);
    // SAFETY: plain SDK call.
    let mut jitter = unsafe { super::ffi::system_get_chip_id() } ^ crate::cycles() | 1;
    loop {
        // One transport per connection attempt (tmc_node_tls::tls: "One value per connection").
        let mut transport = BoostedConnect(client.transport());
        while !transport.0.is_spent() {
            let now_ms = clock.cycles() / 1000;
            let rng = crate::jitter_rng(&mut jitter);
            // The node's Wait is not needed: the 50 ms tick polls often enough for all its deadlines.
            let _wait = node.poll(now_ms, rng, &mut transport, &mut sensor, &mut Uart0);
            suspend();
        }
    }
}
