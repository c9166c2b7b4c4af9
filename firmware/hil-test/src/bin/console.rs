//! The provisioning console on the lx106, driven by the real PC side (`console_provisioning`):
//! `tools/mtls-harness` runs `tmc-provision sensor-console` (what `make provision-sensor` runs) against a
//! pseudo-terminal whose other end it bridges to two named pipes, `console.tx` (node → PC) and
//! `console.rx` (PC → node); the node's console is those pipes, its chip a simulated 608A without a key,
//! its identity sector a RAM array. The PC side's exit status comes back on `console.result`.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use tmc_atecc::sim::{Model, SimAtecc};
use tmc_firmware::semihost::{HostError, HostFile};
use tmc_node_console::{Console, EnterWatch, IdentityFlash, Step, ENTER_COMMAND};
use tmc_node_tls::atecc::AteccElement;
use tmc_node_tls::cert::Certificate;
use tmc_node_tls::identity::{IdentityRecord, SECTOR_LEN};

use tmc_hil_test::ensure;

/// Another chip than the mTLS checks' (a node that was never provisioned).
const SERIAL: [u8; 9] = [0x01, 0x23, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0xEE];

/// The identity sector, in RAM: erased at first.
struct RamSector(Vec<u8>);

impl IdentityFlash for RamSector {
    type Error = &'static str;
    fn read(&mut self, buf: &mut [u8]) -> Result<(), Self::Error> {
        let n = buf.len();
        buf.copy_from_slice(self.0.get(..n).ok_or("read past the sector")?);
        Ok(())
    }
    fn write(&mut self, record: &[u8]) -> Result<(), Self::Error> {
        if record.len() > SECTOR_LEN {
            return Err("record larger than the sector");
        }
        self.0.fill(0xFF);
        self.0[..record.len()].copy_from_slice(record);
        Ok(())
    }
}

/// The console's output: the pipe to the PC.
struct PipeOut(HostFile);

impl fmt::Write for PipeOut {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // The PC reads lines ending in "\r\n" or "\n" alike; a UART console sends "\r\n".
        self.0.write_all(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

fn pipe_error(what: &str) -> impl FnOnce(HostError) -> String + '_ {
    move |e| format!("{e} on {what} (run through run-qemu-tests.sh)")
}

pub fn console_provisioning() -> Result<(), String> {
    let sim = SimAtecc::with_serial(Model::Atecc608a, SERIAL);
    let mut chip = tmc_atecc::Atecc::new(sim.i2c(), sim.delay());
    let mut key = AteccElement {
        chip: &mut chip,
        slot: 0,
    };
    let mut sector = RamSector(alloc::vec![0xFF; SECTOR_LEN]);
    let mut out = PipeOut(HostFile::open_write(c"console.tx").map_err(pipe_error("console.tx"))?);
    let mut input = HostFile::open_read(c"console.rx").map_err(pipe_error("console.rx"))?;
    let mut console = Console::new();
    let _ = fmt::Write::write_str(
        &mut out,
        &format!(
            "\ntmc-sensor qemu-tests console\ntype {ENTER_COMMAND} to enter provisioning mode\n"
        ),
    );
    // At the banner only `provision` counts; then the console has the line.
    let mut banner = EnterWatch::new();
    let mut in_mode = false;
    let mut exited = false;
    let mut buf = [0u8; 256];
    while !exited {
        let n = input.read(&mut buf).map_err(pipe_error("console.rx"))?;
        if n == 0 {
            break;
        }
        for (i, &byte) in buf[..n].iter().enumerate() {
            if in_mode {
                let rest = &buf[i..n];
                exited = console
                    .feed_bytes(rest, &mut key, &mut sector, &mut out)
                    .map_err(|_| String::from("console output"))?
                    == Step::Exit;
                break;
            }
            if banner.push(byte) {
                in_mode = true;
                console
                    .start(&mut out)
                    .map_err(|_| String::from("console output"))?;
            }
        }
    }
    drop(out);
    let mut result = [0u8; 512];
    let m = HostFile::open_read(c"console.result")
        .and_then(|mut f| f.read_to_end(&mut result))
        .map_err(pipe_error("console.result"))?;
    let result = String::from_utf8_lossy(&result[..m]);
    ensure(result.starts_with("exit 0"), || {
        format!("tmc-provision sensor-console: {result}")
    })?;
    ensure(exited, || String::from("the PC side did not end with exit"))?;
    let record = IdentityRecord::decode(&sector.0).map_err(|e| format!("identity sector: {e}"))?;
    let cert =
        Certificate::parse(record.cert_der).map_err(|e| format!("stored certificate: {e}"))?;
    let chip_key = tmc_atecc::Atecc::new(sim.i2c(), sim.delay())
        .public_key(0)
        .map_err(|e| format!("chip key: {e:?}"))?;
    ensure(cert.public_key == chip_key, || {
        String::from("the stored certificate is not for the chip's key")
    })?;
    tmc_firmware::println!("     console: {}", result.trim_end());
    Ok(())
}

#[no_mangle]
pub extern "C" fn tmc_main() -> i32 {
    tmc_hil_test::run("console", &[("console_provisioning", console_provisioning)])
}
