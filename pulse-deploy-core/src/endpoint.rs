//! [`Endpoint`]: a host and port where an instance is reached by the router and by the deployer.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A host (IP address or DNS name) and a port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    /// IP address or host name.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Endpoint {
    /// A new endpoint.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Endpoint { host: host.into(), port }
    }

    /// `http://host:port` (IPv6 hosts in brackets).
    pub fn http_base(&self) -> String {
        format!("http://{self}")
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}
