//! An address block (`10.0.0.0/8`, `fd00::/8`, or one address), parsed from configuration.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 network: an address with its host bits zero, and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a CIDR from the configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("{input:?} is not an IP address (expected e.g. 10.0.0.0/8 or fd00::/8)")]
    Address { input: String },
    #[error("{input:?} is not a prefix length (a number after the '/')")]
    Prefix { input: String },
    #[error("prefix /{prefix} is longer than the {max} bits of the address")]
    PrefixTooLong { prefix: u32, max: u8 },
    /// A typo guard: `10.1.2.3/8` usually means a mistyped network or prefix.
    #[error("{input} has host bits set; the network is {network}")]
    HostBits { input: String, network: Cidr },
}

impl Cidr {
    /// Whether `addr` is in this block. An IPv4 block never contains an IPv6 address (mapped
    /// forms are the policy's business, not the block's).
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, addr) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                self.masked(addr) == self.network
            }
            _ => false,
        }
    }

    /// `addr` with the bits past the prefix cleared (same family as `addr`).
    fn masked(&self, addr: IpAddr) -> IpAddr {
        match addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        }
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// `10.0.0.0/8`, `::1/128`, or a bare address (a /32 or /128).
    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let address = || CidrError::Address {
            input: addr.to_owned(),
        };
        let network: IpAddr = addr.parse().map_err(|_| address())?;
        let max = max_prefix(network);
        let prefix = match prefix {
            None => max,
            Some(p) => {
                // Digits only: u32 parsing would also take "+8".
                let n = p
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| p.parse::<u32>().ok())
                    .flatten()
                    .ok_or_else(|| CidrError::Prefix {
                        input: p.to_owned(),
                    })?;
                u8::try_from(n)
                    .ok()
                    .filter(|n| *n <= max)
                    .ok_or(CidrError::PrefixTooLong { prefix: n, max })?
            }
        };
        let unmasked = Cidr { network, prefix };
        let masked = Cidr {
            network: unmasked.masked(network),
            prefix,
        };
        if masked != unmasked {
            return Err(CidrError::HostBits {
                input: s.to_owned(),
                network: masked,
            });
        }
        Ok(masked)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}
