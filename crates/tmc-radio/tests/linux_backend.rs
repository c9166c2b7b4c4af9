//! What the Linux backend can show without hardware: clear errors naming the device.
#![cfg(feature = "linux")]

use std::path::PathBuf;

use tmc_radio::linux::{self, ChipSelect, LinuxError, LinuxRadioPins};
use tmc_radio::RadioConfig;

fn pins(spi: &str, gpiochip: &str, chip_select: ChipSelect) -> LinuxRadioPins {
    LinuxRadioPins {
        spi_device: PathBuf::from(spi),
        spi_clock_hz: 1_000_000,
        chip_select,
        gpiochip: PathBuf::from(gpiochip),
        dio0_line: 4,
        reset_line: 17,
    }
}

#[test]
fn missing_spidev_is_named() {
    let err = linux::open(
        &pins("/dev/spidev9.9", "/dev/gpiochip0", ChipSelect::Kernel),
        RadioConfig::radiohead_default(868_000_000),
    )
    .err()
    .unwrap();
    assert!(
        matches!(err, LinuxError::Spi { action: "open", .. }),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with("cannot open SPI device /dev/spidev9.9: "),
        "{message}"
    );
    assert!(message.contains("dtparam=spi=on"), "{message}");
}

#[test]
fn a_file_that_is_not_spidev_cannot_be_configured() {
    // /dev/null opens but refuses the spidev ioctls.
    let err = linux::open_spi(&pins("/dev/null", "/dev/gpiochip0", ChipSelect::Kernel))
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            LinuxError::Spi {
                action: "configure",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("cannot configure SPI device /dev/null"),
        "{err}"
    );
}

#[test]
fn missing_gpiochip_is_named_with_line_and_role() {
    let err = linux::GpioOutput::open(std::path::Path::new("/dev/gpiochip99"), 17, "RESET")
        .err()
        .unwrap();
    let message = err.to_string();
    assert!(
        message.starts_with("cannot request GPIO line 17 (RESET) on /dev/gpiochip99"),
        "{message}"
    );
    let err = linux::GpioDio0::open(std::path::Path::new("/dev/gpiochip99"), 4)
        .err()
        .unwrap();
    assert!(err.to_string().contains("GPIO line 4 (DIO0)"), "{err}");
}
