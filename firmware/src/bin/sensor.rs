//! The TMC sensor node for the real ESP8266 (feature `esp8266`, built by
//! `build-esp8266.sh`). Built, NOT yet tested on hardware.
//!
//! Two builds of this binary:
//! - default (bare metal, bench transport): `tmc_main` below;
//! - feature `nonos-sdk` (`ESP8266_SDK=<dir>`): the SDK boots and calls
//!   `user_pre_init`/`user_init` below; the application is
//!   `tmc_firmware::sdk::app` (Wi-Fi, mutual TLS with the ATECC's key,
//!   `system_adc_read`; the node in a coroutine, `sdk::node_task`).
//!
//! Bare-metal build:
//! Boot: UART0 at 115200 8N1, banner, then the main loop: feed the watchdog,
//! read the CCOUNT millisecond clock, `Node::poll` with the bench transport
//! (loopback broker on the console, see `transport::bench`) and the TOUT ADC
//! sensor (currently the deterministic `tmc_sensor_core::adc` waveform, see
//! `hw::adc`), busy-wait (feeding the watchdog) until the node's `Wait`.
#![no_std]
#![no_main]

use core::fmt::Write;

use tmc_atecc::Atecc;
use tmc_firmware::hw::{clock::CcountDelay, gpio::I2cPins, uart::Uart0};
use tmc_soft_i2c::BitBangI2c;
#[cfg(not(feature = "nonos-sdk"))]
use {
    tmc_firmware::config,
    tmc_firmware::hw::{self, adc::ToutAdc, clock::Clock, wdt},
    tmc_firmware::transport::bench::BenchTransport,
    tmc_sensor_core::node::{Node, NodeConfig},
};

/// Wakes the ATECC508A/608 on the bit-banged bus (SCL GPIO14/D5, SDA
/// GPIO12/D6, 100 kHz), logs its revision and serial number, puts it back to
/// sleep. An absent chip (or no pull-ups) is logged, never a panic.
fn probe_atecc(console: &mut Uart0) {
    let i2c = BitBangI2c::new(I2cPins::init(), CcountDelay, 100_000);
    let mut atecc = Atecc::new(i2c, CcountDelay);
    let result = atecc
        .wake()
        .and_then(|()| atecc.info())
        .and_then(|rev| atecc.serial_number().map(|sn| (rev, sn)));
    match result {
        Ok((rev, sn)) => {
            let _ = write!(
                console,
                "atecc: {} rev {:02x} {:02x} {:02x} {:02x}, serial ",
                rev.device(),
                rev.0[0],
                rev.0[1],
                rev.0[2],
                rev.0[3]
            );
            for b in sn {
                let _ = write!(console, "{b:02x}");
            }
            let _ = writeln!(console);
            let _ = atecc.sleep();
        }
        Err(e) => {
            let _ = writeln!(console, "atecc: not found ({e})");
        }
    }
    // Under the SDK the SDK feeds the hardware watchdog.
    #[cfg(not(feature = "nonos-sdk"))]
    wdt::feed();
}

/// SDK hook, before `user_init`: the partition table (SDK 3.0 requires it).
#[cfg(feature = "nonos-sdk")]
#[no_mangle]
pub extern "C" fn user_pre_init() {
    tmc_firmware::sdk::app::pre_init();
}

/// SDK hook: banner, ATECC probe (a few ms of busy-waiting, once), then the
/// Wi-Fi + poll-timer application; returns at once.
#[cfg(feature = "nonos-sdk")]
#[no_mangle]
pub extern "C" fn user_init() {
    let mut console = Uart0::init();
    tmc_firmware::sdk::app::banner(&mut console);
    probe_atecc(&mut console);
    tmc_firmware::sdk::app::start();
}

#[cfg(not(feature = "nonos-sdk"))]
#[no_mangle]
pub extern "C" fn tmc_main() -> i32 {
    wdt::feed();
    let mut console = Uart0::init();
    tmc_firmware::write_banner(
        &mut console,
        "",
        hw::chip_id(),
        "bench (loopback broker on UART0, no Wi-Fi)",
    );

    probe_atecc(&mut console);

    let mut node_config =
        NodeConfig::new(config::CLIENT_ID, config::BROKER_HOST, config::CLIENT_ID);
    node_config.port = config::BROKER_PORT;
    node_config.topic = config::TOPIC;
    node_config.interval_ms = config::INTERVAL_MS;
    let mut node = Node::new(node_config);
    let mut transport = BenchTransport::new(Uart0);
    let mut sensor = ToutAdc::new(config::CLIENT_ID);
    let mut clock = Clock::ccount();
    let mut rng = hw::chip_id() | 1;

    loop {
        wdt::feed();
        let now = clock.now_ms();
        let wait = node.poll(
            now,
            tmc_firmware::jitter_rng(&mut rng),
            &mut transport,
            &mut sensor,
            &mut console,
        );
        // Sleep = busy-wait here (no light sleep without the SDK); the clock
        // must be read at least once per CCOUNT wrap (53 s), the WDT fed.
        let until = now.saturating_add(wait.0.min(1000));
        while clock.now_ms() < until {
            wdt::feed();
        }
    }
}
