//! Vault firewalls (`networkAcls`): with `defaultAction: Deny`, only addresses in `ipRules`
//! reach the data plane.
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::names::printable;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkAcls {
    #[serde(default = "allow")]
    pub default_action: String,
    #[serde(default = "azure_services")]
    pub bypass: String,
    #[serde(default)]
    pub ip_rules: Vec<IpRule>,
    #[serde(default)]
    pub virtual_network_rules: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpRule {
    pub value: String,
}

fn allow() -> String {
    "Allow".into()
}
fn azure_services() -> String {
    "AzureServices".into()
}

impl Default for NetworkAcls {
    fn default() -> Self {
        Self { default_action: allow(), bypass: azure_services(), ip_rules: vec![], virtual_network_rules: vec![] }
    }
}

/// An address or CIDR range: `203.0.113.7`, `203.0.113.0/24`, `2001:db8::/32`.
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match s.trim().split_once('/') {
        Some((a, l)) => (a.parse::<IpAddr>().ok()?, l.parse::<u8>().ok()?),
        None => {
            let a = s.trim().parse::<IpAddr>().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((addr, len))
}

fn contains((net, len): (IpAddr, u8), ip: IpAddr) -> bool {
    let ip = match (net, ip) {
        (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        _ => ip,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

impl NetworkAcls {
    pub fn validate(&mut self) -> Result<()> {
        self.default_action = match self.default_action.to_ascii_lowercase().as_str() {
            "allow" => "Allow".into(),
            "deny" => "Deny".into(),
            _ => return Err(Error::bad_parameter("networkAcls.defaultAction must be Allow or Deny.")),
        };
        if self.ip_rules.len() > 1000 {
            return Err(Error::bad_parameter("A vault takes at most 1000 IP rules."));
        }
        for r in &self.ip_rules {
            if parse_cidr(&r.value).is_none() {
                return Err(Error::bad_parameter(format!(
                    "'{}' is not an IP address or CIDR range.",
                    printable(&r.value)
                )));
            }
        }
        Ok(())
    }

    /// Whether a caller at `ip` may reach the vault's data plane. An unknown address is only
    /// let in when the default is Allow.
    pub fn allows(&self, ip: Option<IpAddr>) -> bool {
        if !self.default_action.eq_ignore_ascii_case("deny") {
            return true;
        }
        let Some(ip) = ip else { return false };
        self.ip_rules.iter().filter_map(|r| parse_cidr(&r.value)).any(|net| contains(net, ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acls(default: &str, rules: &[&str]) -> NetworkAcls {
        NetworkAcls {
            default_action: default.into(),
            ip_rules: rules.iter().map(|r| IpRule { value: r.to_string() }).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn firewall() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert!(acls("Allow", &[]).allows(ip("8.8.8.8")));
        let deny = acls("Deny", &["10.0.0.0/8", "127.0.0.1", "2001:db8::/32"]);
        assert!(deny.allows(ip("10.1.2.3")));
        assert!(deny.allows(ip("127.0.0.1")));
        assert!(deny.allows(ip("::ffff:127.0.0.1")));
        assert!(deny.allows(ip("2001:db8::1")));
        assert!(!deny.allows(ip("127.0.0.2")));
        assert!(!deny.allows(ip("11.0.0.1")));
        assert!(!deny.allows(None));
        assert!(acls("deny", &["0.0.0.0/0"]).allows(ip("1.2.3.4")));
    }

    #[test]
    fn validation() {
        assert!(acls("Deny", &["300.1.1.1"]).validate().is_err());
        assert!(acls("Deny", &["1.2.3.4/33"]).validate().is_err());
        assert!(acls("Sometimes", &[]).validate().is_err());
        let mut ok = acls("deny", &["1.2.3.0/24"]);
        assert!(ok.validate().is_ok());
        assert_eq!(ok.default_action, "Deny");
    }
}
