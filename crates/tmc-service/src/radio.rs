//! Opening the radio a service is configured for: the board's SX1276 through the kernel's SPI and GPIO devices,
//! or the simulated air (the real driver on the register-level simulator, shared between processes).
//!
//! ```toml
//! [radio]
//! board = "/etc/tmc/board.toml"    # pins, frequency, modem, power, region (duty cycle), node address
//! # sim = "sim:/run/tmc/air,loss=0.2,corrupt=0.01,seed=7"   # simulated air instead of the board's SPI/GPIO
//! # address = 10                    # overrides the board's node address (required with sim and no board)
//! ```
//!
//! With `sim` and a `board`, the board's frequency, modem and duty cycle are simulated; with `sim` alone,
//! RadioHead's defaults at 868.0 MHz and a 1 % duty cycle (the EU 868.0–868.6 MHz band).
//!
//! The simulated air needs the `sim` feature (the image's binaries are built without it, to keep them small):
//! without it, a `sim` radio is [`RadioOpenError::SimNotBuilt`].

use std::path::{Path, PathBuf};

use tmc_board::BoardPreset;
use tmc_radio::{
    Clock, Datagram, DutyCycle, DutyCycleLimiter, PacketRadio, PacketRadioError, RadioConfig,
    RadioError, Reception, ReliableConfig, ReliableDatagram, StdClock,
};
#[cfg(feature = "sim")]
use tmc_radio_sim::air::{self, AirLink, AirSpec};
#[cfg(feature = "sim")]
use tmc_radio_sim::{SimClock, SimSx1276};

/// The `[radio]` table of a service's configuration (plain data, in tmc-config).
pub use tmc_config::radio::{resolve_sim_dir, RadioSection};

/// Why the radio could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum RadioOpenError {
    #[error(transparent)]
    Board(#[from] tmc_board::BoardError),
    #[error(transparent)]
    Linux(#[from] tmc_radio::linux::LinuxError),
    #[error("[radio]: set `board` (a board preset) or `sim` (simulated air), or both")]
    Nothing,
    #[error("[radio]: `address` is required with `sim` and no `board`")]
    NoAddress,
    #[error("[radio] duty_cycle: {0}")]
    DutyCycle(String),
    #[error("[radio] sim: {0}")]
    Sim(String),
    #[error("[radio] sim: this build has no simulated air (built without the `sim` feature of tmc-relay/tmc-receiver, as the image's are); use `board`")]
    SimNotBuilt,
    #[error("radio: {0}")]
    Radio(#[from] RadioError),
}

/// The radio behind a service.
pub enum ServiceRadio {
    Board(Box<tmc_radio::linux::LinuxSx1276>),
    /// The simulated chip, and the link to the other processes on the air (kept open as long as the radio).
    #[cfg(feature = "sim")]
    Sim(Box<SimSx1276>, AirLink),
}

/// The clock matching [`ServiceRadio`] (the simulator keeps its own time base).
#[derive(Clone)]
pub enum ServiceClock {
    Std(StdClock),
    #[cfg(feature = "sim")]
    Sim(SimClock),
}

impl PacketRadio for ServiceRadio {
    fn transmit(&mut self, payload: &[u8]) -> Result<(), PacketRadioError> {
        match self {
            ServiceRadio::Board(r) => PacketRadio::transmit(r.as_mut(), payload),
            #[cfg(feature = "sim")]
            ServiceRadio::Sim(r, _) => PacketRadio::transmit(r.as_mut(), payload),
        }
    }

    fn receive(&mut self, timeout: std::time::Duration) -> Result<Reception, PacketRadioError> {
        match self {
            ServiceRadio::Board(r) => PacketRadio::receive(r.as_mut(), timeout),
            #[cfg(feature = "sim")]
            ServiceRadio::Sim(r, _) => PacketRadio::receive(r.as_mut(), timeout),
        }
    }

    fn time_on_air(&self, len: usize) -> std::time::Duration {
        match self {
            ServiceRadio::Board(r) => r.time_on_air(len),
            #[cfg(feature = "sim")]
            ServiceRadio::Sim(r, _) => r.time_on_air(len),
        }
    }
}

impl Clock for ServiceClock {
    fn now(&self) -> std::time::Duration {
        match self {
            ServiceClock::Std(c) => c.now(),
            #[cfg(feature = "sim")]
            ServiceClock::Sim(c) => c.now(),
        }
    }
}

/// An opened radio, framed as RadioHead reliable datagrams within the duty cycle.
pub struct OpenedRadio {
    pub link: ReliableDatagram<ServiceRadio, ServiceClock>,
    pub address: u8,
    pub config: RadioConfig,
    pub duty_cycle: DutyCycle,
    /// For logs: which board or air.
    pub description: String,
}

/// `--board` / `--radio` on a service's command line: they replace the configuration's `[radio]` source.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RadioOverride {
    /// Board preset to use instead of `[radio] board` (board-config/*.toml).
    #[arg(long)]
    pub board: Option<PathBuf>,
    /// Radio instead of the board's: `sim:DIR[,loss=P][,corrupt=P][,seed=N]` (the simulated air).
    #[arg(long)]
    pub radio: Option<String>,
}

/// What a service does with its `[radio]` table: override it from the command line, open it.
pub trait OpenRadio {
    /// Applies command-line overrides (paths relative to the working directory).
    fn apply(&mut self, overrides: &RadioOverride) -> std::io::Result<()>;
    /// The board preset, if any, with a relative path taken from `config_file`'s directory.
    fn board_preset(&self, config_file: &Path) -> Result<Option<BoardPreset>, RadioOpenError>;
    /// Opens the radio. `name` identifies this process on the simulated air (e.g. `relay-10`).
    fn open(
        &self,
        config_file: &Path,
        name: &str,
        seed: u64,
    ) -> Result<OpenedRadio, RadioOpenError>;
}

impl OpenRadio for RadioSection {
    fn apply(&mut self, overrides: &RadioOverride) -> std::io::Result<()> {
        if let Some(board) = &overrides.board {
            self.board = Some(std::path::absolute(board)?);
        }
        if let Some(radio) = &overrides.radio {
            let cwd = std::env::current_dir()?.join("cli");
            self.sim = Some(resolve_sim_dir(&cwd, radio));
        }
        Ok(())
    }

    fn board_preset(&self, config_file: &Path) -> Result<Option<BoardPreset>, RadioOpenError> {
        let Some(board) = &self.board else {
            return Ok(None);
        };
        let path = match config_file.parent() {
            Some(dir) if board.is_relative() => dir.join(board),
            _ => board.clone(),
        };
        Ok(Some(BoardPreset::from_file(path)?))
    }

    fn open(
        &self,
        config_file: &Path,
        // only the simulated air names processes
        #[cfg_attr(not(feature = "sim"), expect(unused_variables))] name: &str,
        seed: u64,
    ) -> Result<OpenedRadio, RadioOpenError> {
        let preset = self.board_preset(config_file)?;
        let (config, duty_cycle, board_address) = match &preset {
            Some(p) => (
                p.radio_config(),
                p.radio.duty_cycle(),
                Some(p.radio.node_address),
            ),
            None => (
                RadioConfig::radiohead_default(868_000_000),
                DutyCycle::from_ppm(10_000).ok_or(RadioOpenError::Nothing)?,
                None,
            ),
        };
        let duty_cycle =
            match self.duty_cycle {
                None => duty_cycle,
                Some(_) if self.sim.is_none() => return Err(RadioOpenError::DutyCycle(
                    "only for the simulated air: on a board, the region's band sets the duty cycle"
                        .into(),
                )),
                Some(percent) => DutyCycle::from_percent(percent).ok_or_else(|| {
                    RadioOpenError::DutyCycle(format!("{percent}: must be above 0 and at most 100"))
                })?,
            };
        let address = self
            .address
            .or(board_address)
            .ok_or(RadioOpenError::NoAddress)?;
        let (radio, clock, description) = match (&self.sim, &preset) {
            #[cfg(not(feature = "sim"))]
            (Some(_), _) => return Err(RadioOpenError::SimNotBuilt),
            #[cfg(feature = "sim")]
            (Some(spec), _) => {
                let spec: AirSpec = spec
                    .parse()
                    .map_err(|e: air::AirSpecError| RadioOpenError::Sim(e.to_string()))?;
                let joined =
                    air::join(&spec, name).map_err(|e| RadioOpenError::Sim(e.to_string()))?;
                let chip = joined.chip;
                let clock = chip.clock.clone();
                let radio =
                    tmc_radio::Sx1276::new(chip.spi, chip.reset, chip.dio0, chip.delay, config)?;
                let description = format!(
                    "simulated air {} as {name} (loss {}, corruption {})",
                    spec.dir.display(),
                    spec.loss,
                    spec.corruption
                );
                (
                    ServiceRadio::Sim(Box::new(radio), joined.link),
                    ServiceClock::Sim(clock),
                    description,
                )
            }
            (None, Some(p)) => {
                let radio = tmc_radio::linux::open(&p.linux_pins(), config)?;
                (
                    ServiceRadio::Board(Box::new(radio)),
                    ServiceClock::Std(StdClock::new()),
                    format!("board {} ({})", p.name, p.path.display()),
                )
            }
            (None, None) => return Err(RadioOpenError::Nothing),
        };
        let datagram =
            Datagram::new(radio, clock, address).with_duty_cycle(DutyCycleLimiter::new(duty_cycle));
        let link = ReliableDatagram::new(datagram, ReliableConfig::for_modem(&config.modem), seed);
        Ok(OpenedRadio {
            link,
            address,
            config,
            duty_cycle,
            description,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim_section(dir: &Path) -> RadioSection {
        RadioSection {
            sim: Some(format!("sim:{}", dir.display())),
            address: Some(10),
            ..RadioSection::default()
        }
    }

    /// The image's build: a `sim` radio is refused, naming the feature it lacks.
    #[cfg(not(feature = "sim"))]
    #[test]
    fn sim_radio_without_the_feature_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let result = sim_section(dir.path()).open(&dir.path().join("relay.toml"), "relay-10", 1);
        let err = result.err().expect("no simulated air in this build");
        assert!(matches!(err, RadioOpenError::SimNotBuilt), "{err:?}");
        assert!(err.to_string().contains("`sim` feature"), "{err}");
    }

    #[cfg(feature = "sim")]
    #[test]
    fn sim_radio_with_the_feature_joins_the_air() {
        let dir = tempfile::tempdir().unwrap();
        let opened = sim_section(dir.path())
            .open(&dir.path().join("relay.toml"), "relay-10", 1)
            .unwrap();
        assert_eq!(opened.address, 10);
        assert!(
            opened.description.starts_with("simulated air"),
            "{}",
            opened.description
        );
    }
}
