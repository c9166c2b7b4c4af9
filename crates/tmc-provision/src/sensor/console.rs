//! `tmc-provision sensor-console`: a flashed sensor's identity over its UART console (the node side is
//! `tmc-node-console`).
//!
//! It does what `sensor-identity` does for a flashed node, over its console at 115200 baud: the site is
//! checked first; then `provision` is typed (again every second) until the node's prompt, `csr NAME
//! [new-key]` makes the key if the slot has none and returns the request, which the site CA certifies
//! (`tmc_enroll::SensorSite`: the same checks and `issue --csr` / `renew --csr`); `ca` and `cert` send the
//! site CA and the certificate, which the node checks and stores in its identity sector; `show` must report
//! the SHA-256 of exactly those; `exit` leaves the mode. Each step has `--timeout` seconds; a timeout names
//! the step and the last lines received, and a node's `error: ` line stops the run with that line.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use thiserror::Error;
use tmc_enroll::{EnrollOptions, IdentityError, SensorCertificate, SensorSite};

use crate::sensor::console_link::ConsoleLink;

/// The node's prompt line, as `tmc_node_console::PROMPT` starts.
const PROMPT_START: &str = "tmc provisioning:";
/// How often `provision` is typed again while the prompt does not come (a node still booting, or a
/// console that lost the first line).
const RETYPE_EVERY: Duration = Duration::from_secs(1);
/// Lines kept for an error message.
const RECEIVED_KEPT: usize = 4;

/// What to do.
#[derive(Clone, Debug)]
pub struct SensorConsoleOptions {
    /// The node's console: a serial adapter (`/dev/ttyUSB0`) or a pty.
    pub port: PathBuf,
    /// The site, name, topics, days and `new_key` (`slot` and `identity_file` are not used).
    pub enroll: EnrollOptions,
    /// How long each step may take.
    pub step_timeout: Duration,
}

/// What happened to the node's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKey {
    /// The slot had none: GenKey made one.
    Created,
    /// The slot's key was kept.
    Kept,
    /// `--new-key`: GenKey replaced it.
    Replaced,
}

/// What [`sensor_console`] did.
#[derive(Clone, Debug)]
pub struct SensorConsoleReport {
    /// The node's key.
    pub key: NodeKey,
    /// The certificate the site CA issued (and the CA).
    pub certified: SensorCertificate,
    /// SHA-256 of the certificate's DER, as the node reported it stored.
    pub cert_sha256: String,
    /// SHA-256 of the CA certificate's DER, as the node reported it stored.
    pub ca_sha256: String,
}

/// Why `sensor-console` stopped.
#[derive(Debug, Error)]
pub enum SensorConsoleError {
    /// The site refused (before the node was touched), or refused the request.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The console could not be opened.
    #[error("{}: cannot open the console: {source}", port.display())]
    Open {
        /// The port.
        port: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Reading or writing the console failed.
    #[error("{}: {step}: {source}", port.display())]
    Io {
        /// The port.
        port: PathBuf,
        /// The step.
        step: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The node did not answer in time.
    #[error("{}: {step}: no answer within {} s; received: {received}", port.display(), timeout.as_secs_f32())]
    Timeout {
        /// The port.
        port: PathBuf,
        /// The step.
        step: &'static str,
        /// The step's time limit.
        timeout: Duration,
        /// The last lines received, or "nothing".
        received: String,
    },
    /// The node refused: its `error: ` line.
    #[error("{}: {step}: the node refused: {line}", port.display())]
    Refused {
        /// The port.
        port: PathBuf,
        /// The step.
        step: &'static str,
        /// The node's line.
        line: String,
    },
    /// The node answered something else than the protocol says.
    #[error("{}: {step}: {problem}", port.display())]
    Unexpected {
        /// The port.
        port: PathBuf,
        /// The step.
        step: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// Provisions the node on `options.port`: see the module documentation.
pub fn sensor_console(
    options: &SensorConsoleOptions,
) -> Result<SensorConsoleReport, SensorConsoleError> {
    let site = SensorSite::check(&options.enroll)?;
    let link = ConsoleLink::open(&options.port).map_err(|source| SensorConsoleError::Open {
        port: options.port.clone(),
        source,
    })?;
    let mut node = Node {
        link,
        timeout: options.step_timeout,
        received: Vec::new(),
    };
    node.enter()?;
    let name = &options.enroll.name;
    let (key, csr) = node.request(name, options.enroll.new_key)?;
    let certified = site.certify(&format!("the node on {}", options.port.display()), &csr)?;
    let ca_sha256 = hex::encode(Sha256::digest(&certified.ca_der));
    let cert_sha256 = hex::encode(Sha256::digest(&certified.cert_der));
    node.send_pem("ca", &certified.ca_pem, &format!("ok ca {ca_sha256}"))?;
    node.send_pem(
        "cert",
        &certified.cert_pem,
        &format!("ok stored {cert_sha256}"),
    )?;
    node.verify(&cert_sha256, &ca_sha256)?;
    node.leave()?;
    Ok(SensorConsoleReport {
        key,
        certified,
        cert_sha256,
        ca_sha256,
    })
}

/// The protocol's steps over the link.
struct Node {
    link: ConsoleLink,
    timeout: Duration,
    /// The last lines received, for a timeout's message.
    received: Vec<String>,
}

impl Node {
    fn io(&self, step: &'static str) -> impl FnOnce(std::io::Error) -> SensorConsoleError {
        let port = self.link.path().to_path_buf();
        move |source| SensorConsoleError::Io { port, step, source }
    }

    fn unexpected(&self, step: &'static str, problem: String) -> SensorConsoleError {
        SensorConsoleError::Unexpected {
            port: self.link.path().to_path_buf(),
            step,
            problem,
        }
    }

    fn send(&mut self, step: &'static str, line: &str) -> Result<(), SensorConsoleError> {
        self.link.send_line(line).map_err(self.io(step))
    }

    /// The next line before `deadline` (`None`: it passed). An `error: ` line stops the step.
    fn next_line(
        &mut self,
        step: &'static str,
        deadline: Instant,
    ) -> Result<Option<String>, SensorConsoleError> {
        let Some(line) = self.link.read_line(deadline).map_err(self.io(step))? else {
            return Ok(None);
        };
        if line.starts_with("error: ") {
            return Err(SensorConsoleError::Refused {
                port: self.link.path().to_path_buf(),
                step,
                line,
            });
        }
        if self.received.len() == RECEIVED_KEPT {
            self.received.remove(0);
        }
        self.received.push(line.clone());
        Ok(Some(line))
    }

    fn timed_out(&self, step: &'static str) -> SensorConsoleError {
        let mut received: Vec<String> = self.received.iter().map(|l| format!("{l:?}")).collect();
        let partial = self.link.partial_line();
        if !partial.is_empty() {
            received.push(format!("{partial:?} (no line end)"));
        }
        SensorConsoleError::Timeout {
            port: self.link.path().to_path_buf(),
            step,
            timeout: self.timeout,
            received: if received.is_empty() {
                "nothing".into()
            } else {
                received.join(", ")
            },
        }
    }

    /// Reads lines (within one step timeout) up to the first that `is_final` accepts, and returns it; the
    /// lines before it (a banner, an echo, a repeated prompt) are skipped.
    fn until(
        &mut self,
        step: &'static str,
        is_final: impl Fn(&str) -> bool,
    ) -> Result<String, SensorConsoleError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.next_line(step, deadline)? {
                Some(line) if is_final(&line) => return Ok(line),
                Some(_) => {}
                None => return Err(self.timed_out(step)),
            }
        }
    }

    /// Types `provision` (again every second) until the prompt: at the banner it enters the mode, inside
    /// the mode it prints the prompt again.
    fn enter(&mut self) -> Result<(), SensorConsoleError> {
        const STEP: &str = "entering provisioning mode";
        self.received.clear();
        let deadline = Instant::now() + self.timeout;
        // An empty line first ends whatever was typed before (an empty line is ignored everywhere).
        self.send(STEP, "")?;
        loop {
            self.send(STEP, "provision")?;
            let retype = (Instant::now() + RETYPE_EVERY).min(deadline);
            while let Some(line) = self.next_line(STEP, retype)? {
                if line.starts_with(PROMPT_START) {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(self.timed_out(STEP));
            }
        }
    }

    /// `csr NAME [new-key]`: what happened to the key, and the request's PEM.
    fn request(
        &mut self,
        name: &str,
        new_key: bool,
    ) -> Result<(NodeKey, String), SensorConsoleError> {
        const STEP: &str = "csr";
        self.received.clear();
        let command = if new_key {
            format!("csr {name} new-key")
        } else {
            format!("csr {name}")
        };
        self.send(STEP, &command)?;
        let key_line = self.until(STEP, |l| l.starts_with("key "))?;
        let key = match key_line.as_str() {
            "key created" => NodeKey::Created,
            "key kept" => NodeKey::Kept,
            "key replaced" => NodeKey::Replaced,
            other => return Err(self.unexpected(STEP, format!("unknown key outcome {other:?}"))),
        };
        let mut pem = String::new();
        let deadline = Instant::now() + self.timeout;
        loop {
            let Some(line) = self.next_line(STEP, deadline)? else {
                return Err(self.timed_out(STEP));
            };
            if line == "ok csr" {
                break;
            }
            pem.push_str(&line);
            pem.push('\n');
        }
        if !pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----") {
            return Err(self.unexpected(
                STEP,
                format!("no certificate request before \"ok csr\": {pem:?}"),
            ));
        }
        Ok((key, pem))
    }

    /// `command` and a PEM block; the node must answer `expected`.
    fn send_pem(
        &mut self,
        step: &'static str,
        pem: &str,
        expected: &str,
    ) -> Result<(), SensorConsoleError> {
        self.received.clear();
        self.send(step, step)?;
        for line in pem.lines() {
            self.send(step, line)?;
        }
        let answer = self.until(step, |l| l.starts_with("ok "))?;
        if answer != expected {
            return Err(self.unexpected(
                step,
                format!("the node answered {answer:?}, expected {expected:?}"),
            ));
        }
        Ok(())
    }

    /// `show`: the node's stored certificate and CA must be the ones issued.
    fn verify(&mut self, cert_sha256: &str, ca_sha256: &str) -> Result<(), SensorConsoleError> {
        const STEP: &str = "show";
        self.received.clear();
        self.send(STEP, "show")?;
        let shown = self.until(STEP, |l| l.starts_with("identity: "))?;
        let expected = format!("identity: cert {cert_sha256} ca {ca_sha256}");
        if shown != expected {
            return Err(self.unexpected(
                STEP,
                format!("the node stores {shown:?}, expected {expected:?}"),
            ));
        }
        Ok(())
    }

    /// `exit`: the node leaves the mode.
    fn leave(&mut self) -> Result<(), SensorConsoleError> {
        const STEP: &str = "exit";
        self.received.clear();
        self.send(STEP, "exit")?;
        self.until(STEP, |l| l == "ok exit").map(|_| ())
    }
}
