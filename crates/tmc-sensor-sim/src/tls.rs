//! The sensor's connections over the node's TLS client (`tmc-node-tls`), signing with its chip.

use tmc_node_tls::atecc::AteccElement;
use tmc_node_tls::{OsRng, StdTcpSocket, TlsClient, TlsClientConfig};

use crate::identity::{Chip, ChipIdentity, IdentityError, KEY_SLOT};
use crate::sensor::{Flow, SensorPlan, SensorRun};
use crate::sim::SimError;

/// Runs `run` over TLS connections to `plan`'s host and port, a new transport per connection attempt (a
/// TLS transport is one attempt: it borrows its record buffers for the connection's life), until the
/// node's work is done. The chip is opened here: the simulated chip stays in the thread that made it.
pub(crate) fn run(
    identity: &ChipIdentity,
    plan: &SensorPlan,
    run: &mut SensorRun<'_>,
) -> Result<(), SimError> {
    let mut chip = Chip::open(&identity.sensor, &identity.chip)?;
    let config =
        TlsClientConfig::from_ca_cert(&identity.ca_der, &identity.broker_name, &identity.cert_der)
            .map_err(|e| IdentityError::Certificate {
                path: identity.ca_path.clone(),
                problem: e.to_string(),
            })?;
    let element = AteccElement {
        chip: &mut chip.driver,
        slot: KEY_SLOT,
    };
    let mut client = TlsClient::new(
        config,
        StdTcpSocket::new(plan.host.as_str(), plan.port),
        element,
        OsRng,
    );
    loop {
        let mut transport = client.transport();
        if run.connection(&mut transport)? == Flow::Finished {
            return Ok(());
        }
    }
}
