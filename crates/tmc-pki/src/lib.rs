//! # tmc-pki
//!
//! The site's whole security setup in one library (and the `tmc-pki` command over it):
//!
//! - [`Site::init`]: the site CA (ECC P-256, ecdsa-with-SHA256, CA:TRUE pathlen 0, keyCertSign + cRLSign),
//!   the broker's server certificate (`mqtt.com`, the AP address and any extra names), an empty CRL
//!   and the envelope key ring the relay and receiver share.
//! - [`Site::issue`] / [`Site::issue_csr`]: client certificates (clientAuth, CN = name) for sensors,
//!   relays, receivers and upstream clients; with a CSR, the key never leaves the secure element.
//! - [`Site::revoke`] (rewrites the CRL mosquitto reads), [`Site::renew`], [`Site::list`].
//! - [`broker::render`]: the mosquitto drop-in (mTLS, identity = certificate CN, per-device ACL).
//! - [`validate`]: expired or not-yet-valid certificates, a certificate not signed by the site CA, a
//!   key that does not match its certificate, a server certificate without the broker's name.
//!
//! Files keep the names of the existing deployment: `ecc.ca.cert.pem`, `ecc.ca.key.pem`,
//! `ecc.<name>.cert.pem`, `ecc.<name>.key.pem`. Keys are written 0600 and refused when group or
//! others can read them. The CA key is only needed where certificates are issued, never on a Pi.

pub mod broker;
mod error;
mod inventory;
mod site;
pub mod validate;

pub use error::PkiError;
pub use inventory::{Identity, Role};
pub use site::{Site, SiteInit, Validity, BROKER_NAME, DEFAULT_BROKER_HOST};
