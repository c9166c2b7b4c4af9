//! Raspberry Pi backend: SPI through `/dev/spidevB.C` (kernel spidev, mode 0) and GPIO through the character
//! device `/dev/gpiochipN` — never sysfs, never memory-mapped registers: the kernel owns the hardware.
//!
//! Chip select is either the kernel's (the spidev device's own CE line, e.g. Dragino with
//! `dtoverlay=spi0-1cs,cs0_pin=25`) or a GPIO line we drive around each transaction (embedded-hal-bus's
//! `ExclusiveDevice`; the spidev device's own CE then toggles an unconnected pin, which is harmless).

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use embedded_hal::digital::{ErrorKind as PinErrorKind, ErrorType as PinErrorType, OutputPin};
use embedded_hal::spi::{
    ErrorKind as SpiErrorKind, ErrorType as SpiErrorType, Operation, SpiDevice,
};
use embedded_hal_bus::spi::{DeviceError, ExclusiveDevice};
use gpiocdev::line::{EdgeDetection, Value};
use gpiocdev::Request;
use linux_embedded_hal::spidev::{SpiModeFlags, Spidev, SpidevOptions};
use linux_embedded_hal::{Delay, SPIError, SpidevBus, SpidevDevice};
use thiserror::Error;

use crate::hal::Dio0;
use crate::sx1276::{RadioConfig, RadioError, Sx1276};

/// Name under which our GPIO lines show in `gpioinfo`.
const CONSUMER: &str = "tmc-radio";

/// Who drives the SX1276 NSS pin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChipSelect {
    /// The kernel, as the spidev device's CE line.
    Kernel,
    /// We do, on this line of the board's gpiochip.
    Gpio {
        /// Line offset (BCM GPIO number on a Pi).
        line: u32,
    },
}

/// Where the radio is wired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinuxRadioPins {
    /// e.g. `/dev/spidev0.0`.
    pub spi_device: PathBuf,
    /// SPI clock in Hz (the SX1276 takes up to 10 MHz).
    pub spi_clock_hz: u32,
    /// Chip-select ownership.
    pub chip_select: ChipSelect,
    /// e.g. `/dev/gpiochip0`.
    pub gpiochip: PathBuf,
    /// DIO0 line offset.
    pub dio0_line: u32,
    /// RESET line offset.
    pub reset_line: u32,
}

/// Opening or driving the Linux devices failed.
#[derive(Debug, Error)]
pub enum LinuxError {
    /// spidev could not be opened or configured.
    #[error("cannot {action} SPI device {}: {source} (is SPI enabled with dtparam=spi=on, and may this user open it?)", device.display())]
    Spi {
        /// Device path.
        device: PathBuf,
        /// What we tried.
        action: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A GPIO line could not be requested.
    #[error("cannot request GPIO line {line} ({role}) on {}: {source}", chip.display())]
    Gpio {
        /// Chip path.
        chip: PathBuf,
        /// Line offset.
        line: u32,
        /// What the line is for.
        role: &'static str,
        /// gpiocdev's error.
        #[source]
        source: gpiocdev::Error,
    },
    /// The radio itself failed.
    #[error(transparent)]
    Radio(#[from] RadioError),
}

/// A GPIO line error, for embedded-hal.
#[derive(Debug, Error)]
#[error("GPIO: {0}")]
pub struct GpioError(#[from] pub gpiocdev::Error);

impl embedded_hal::digital::Error for GpioError {
    fn kind(&self) -> PinErrorKind {
        PinErrorKind::Other
    }
}

/// One requested output line (RESET, or a chip select we drive).
#[derive(Debug)]
pub struct GpioOutput {
    request: Request,
    line: u32,
}

impl GpioOutput {
    /// Requests `line` on `chip` as an output, initially high (inactive for active-low NSS/NRESET).
    pub fn open(chip: &Path, line: u32, role: &'static str) -> Result<Self, LinuxError> {
        let request = Request::builder()
            .on_chip(chip)
            .with_consumer(CONSUMER)
            .with_line(line)
            .as_output(Value::Active)
            .request()
            .map_err(|source| LinuxError::Gpio {
                chip: chip.to_owned(),
                line,
                role,
                source,
            })?;
        Ok(Self { request, line })
    }
}

impl PinErrorType for GpioOutput {
    type Error = GpioError;
}

impl OutputPin for GpioOutput {
    fn set_low(&mut self) -> Result<(), GpioError> {
        Ok(self.request.set_value(self.line, Value::Inactive)?)
    }

    fn set_high(&mut self) -> Result<(), GpioError> {
        Ok(self.request.set_value(self.line, Value::Active)?)
    }
}

/// DIO0 as a rising-edge event on a character-device line.
#[derive(Debug)]
pub struct GpioDio0 {
    request: Request,
    line: u32,
}

impl GpioDio0 {
    /// Requests `line` on `chip` as an input with rising-edge events.
    pub fn open(chip: &Path, line: u32) -> Result<Self, LinuxError> {
        let request = Request::builder()
            .on_chip(chip)
            .with_consumer(CONSUMER)
            .with_line(line)
            .as_input()
            .with_edge_detection(EdgeDetection::RisingEdge)
            .request()
            .map_err(|source| LinuxError::Gpio {
                chip: chip.to_owned(),
                line,
                role: "DIO0",
                source,
            })?;
        Ok(Self { request, line })
    }

    fn drain_events(&self) -> Result<(), GpioError> {
        while self.request.has_edge_event()? {
            self.request.read_edge_event()?;
        }
        Ok(())
    }
}

impl Dio0 for GpioDio0 {
    type Error = GpioError;

    fn wait_high(&mut self, timeout: Duration) -> Result<bool, GpioError> {
        let deadline = Instant::now() + timeout;
        loop {
            // The level decides; edges only wake us. An edge queued by an interrupt already handled is stale
            // and is drained here rather than mistaken for a new one.
            if self.request.value(self.line)? == Value::Active {
                self.drain_events()?;
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            if self.request.wait_edge_event(deadline - now)? {
                self.drain_events()?;
            }
        }
    }
}

/// SPI error of either chip-select arrangement.
#[derive(Debug, Error)]
pub enum LinuxSpiError {
    /// The transfer failed.
    #[error("spidev: {0}")]
    Bus(SPIError),
    /// Driving our chip-select line failed.
    #[error("chip select: {0}")]
    ChipSelect(GpioError),
}

impl embedded_hal::spi::Error for LinuxSpiError {
    fn kind(&self) -> SpiErrorKind {
        match self {
            Self::Bus(e) => embedded_hal::spi::Error::kind(e),
            Self::ChipSelect(_) => SpiErrorKind::ChipSelectFault,
        }
    }
}

/// The SPI device for either chip-select arrangement.
pub enum LinuxSpi {
    /// The kernel toggles CE.
    KernelCs(SpidevDevice),
    /// We toggle a GPIO around each transaction.
    GpioCs(ExclusiveDevice<SpidevBus, GpioOutput, Delay>),
}

impl SpiErrorType for LinuxSpi {
    type Error = LinuxSpiError;
}

impl SpiDevice for LinuxSpi {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), LinuxSpiError> {
        match self {
            Self::KernelCs(device) => device.transaction(operations).map_err(LinuxSpiError::Bus),
            Self::GpioCs(device) => device.transaction(operations).map_err(|e| match e {
                DeviceError::Spi(e) => LinuxSpiError::Bus(e),
                DeviceError::Cs(e) => LinuxSpiError::ChipSelect(e),
            }),
        }
    }
}

/// Opens `/dev/spidevB.C` in mode 0 at `clock_hz`.
fn open_spidev(device: &Path, clock_hz: u32) -> Result<Spidev, LinuxError> {
    let mut spi = Spidev::open(device).map_err(|source| LinuxError::Spi {
        device: device.to_owned(),
        action: "open",
        source,
    })?;
    let options = SpidevOptions::new()
        .bits_per_word(8)
        .max_speed_hz(clock_hz)
        .mode(SpiModeFlags::SPI_MODE_0)
        .build();
    spi.configure(&options).map_err(|source| LinuxError::Spi {
        device: device.to_owned(),
        action: "configure",
        source,
    })?;
    Ok(spi)
}

/// Opens the SPI side with the chosen chip select.
pub fn open_spi(pins: &LinuxRadioPins) -> Result<LinuxSpi, LinuxError> {
    let spi = open_spidev(&pins.spi_device, pins.spi_clock_hz)?;
    match pins.chip_select {
        ChipSelect::Kernel => Ok(LinuxSpi::KernelCs(SpidevDevice(spi))),
        ChipSelect::Gpio { line } => {
            let cs = GpioOutput::open(&pins.gpiochip, line, "chip select")?;
            let device =
                ExclusiveDevice::new(SpidevBus(spi), cs, Delay).map_err(|GpioError(source)| {
                    LinuxError::Gpio {
                        chip: pins.gpiochip.clone(),
                        line,
                        role: "chip select",
                        source,
                    }
                })?;
            Ok(LinuxSpi::GpioCs(device))
        }
    }
}

/// The driver on real hardware.
pub type LinuxSx1276 = Sx1276<LinuxSpi, GpioOutput, GpioDio0, Delay>;

/// Opens every device, resets and configures the radio.
pub fn open(pins: &LinuxRadioPins, config: RadioConfig) -> Result<LinuxSx1276, LinuxError> {
    let spi = open_spi(pins)?;
    let reset = GpioOutput::open(&pins.gpiochip, pins.reset_line, "RESET")?;
    let dio0 = GpioDio0::open(&pins.gpiochip, pins.dio0_line)?;
    Ok(Sx1276::new(spi, reset, dio0, Delay, config)?)
}
