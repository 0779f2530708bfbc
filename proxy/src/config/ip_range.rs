//! An IP address range of the config (`server.trusted_proxies`): a CIDR block such as
//! `10.0.0.0/8` or `2001:db8::/32`, or a single address such as `192.0.2.7`.

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// An IP address range: a CIDR block (`10.0.0.0/8`) or a single address (`192.0.2.7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct IpRange(IpNet);

impl IpRange {
    /// Whether `addr` is in the range. An IPv4-mapped IPv6 address (`::ffff:192.0.2.7`, as a
    /// dual-stack listener sees IPv4 clients) is matched as its IPv4 address.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.0.contains(&addr.to_canonical())
    }
}

impl TryFrom<String> for IpRange {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(net) = text.parse::<IpNet>() {
            return Ok(IpRange(net.trunc()));
        }
        match text.parse::<IpAddr>() {
            Ok(addr) => Ok(IpRange(IpNet::from(addr))),
            Err(_) => Err(format!(
                "`{text}` is neither an IP address nor a CIDR block (such as 10.0.0.0/8)"
            )),
        }
    }
}

impl From<IpRange> for String {
    fn from(range: IpRange) -> String {
        range.to_string()
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str) -> Result<IpRange, String> {
        IpRange::try_from(text.to_string())
    }

    #[test]
    fn blocks_and_single_addresses_parse_and_match() {
        let block = range("10.1.2.3/8").unwrap();
        assert_eq!(block.to_string(), "10.0.0.0/8");
        assert!(block.contains("10.200.0.1".parse().unwrap()));
        assert!(block.contains("::ffff:10.0.0.9".parse().unwrap()));
        assert!(!block.contains("11.0.0.1".parse().unwrap()));
        let single = range("192.0.2.7").unwrap();
        assert!(single.contains("192.0.2.7".parse().unwrap()));
        assert!(!single.contains("192.0.2.8".parse().unwrap()));
        let v6 = range("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(range("10.0.0.0/33").is_err());
        assert!(range("proxy.local").is_err());
    }
}
