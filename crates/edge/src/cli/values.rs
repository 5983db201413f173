//! Parsers of the edge's own option values (`-p`, `-a`, `-m`, `-d`); the
//! ones the supernode shares are in `n2n_cli::values`.

use std::net::{Ipv4Addr, SocketAddrV4};

use n2n_cli::{CliError, values};

use super::{IFNAME_MAX, TapAddress};

/// `-p [ip:]port | ip` (IPv4; an empty or missing address is 0.0.0.0).
pub(crate) fn bind(name: &str, v: &str) -> Result<SocketAddrV4, CliError> {
    let ip = |s: &str| -> Result<Ipv4Addr, CliError> {
        if s.is_empty() {
            return Ok(Ipv4Addr::UNSPECIFIED);
        }
        s.parse()
            .map_err(|_| CliError::bad(name, format!("'{s}' is not an IPv4 address")))
    };
    let port = |s: &str| -> Result<u16, CliError> {
        s.parse()
            .map_err(|_| CliError::bad(name, format!("'{s}' is not a port 0..65535")))
    };
    if let Some((a, p)) = v.split_once(':') {
        Ok(SocketAddrV4::new(ip(a)?, port(p)?))
    } else if v.contains('.') {
        Ok(SocketAddrV4::new(ip(v)?, 0))
    } else {
        Ok(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port(v)?))
    }
}

/// `-a [static:|dhcp:]ip[/bits]`.
pub(crate) fn address(name: &str, v: &str) -> Result<TapAddress, CliError> {
    let (dhcp, spec) = if let Some(r) = v.strip_prefix("static:") {
        (false, r)
    } else if let Some(r) = v.strip_prefix("dhcp:") {
        (true, r)
    } else {
        (false, v)
    };
    let (ip_text, prefix) = match spec.split_once('/') {
        Some((ip, bits)) => (
            ip,
            bits.parse::<u8>()
                .ok()
                .filter(|b| (1..=32).contains(b))
                .ok_or_else(|| CliError::bad(name, format!("prefix '/{bits}' is not 1..32")))?,
        ),
        None => (spec, 24),
    };
    let ip: Ipv4Addr = ip_text
        .parse()
        .map_err(|_| CliError::bad(name, format!("'{ip_text}' is not an IPv4 address")))?;
    if dhcp {
        return Ok(TapAddress::Dhcp);
    }
    if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() {
        return Err(CliError::bad(
            name,
            format!("{ip} is not a usable static address (omit -a to get one from the supernode)"),
        ));
    }
    Ok(TapAddress::Static { ip, prefix })
}

/// Parse `xx:xx:xx:xx:xx:xx` (one or two hex digits per byte).
pub fn parse_mac_text(v: &str) -> Option<[u8; 6]> {
    values::mac(v, &[':'])
}

/// `-m`: a unicast, non-zero MAC.
pub(crate) fn mac(name: &str, v: &str) -> Result<[u8; 6], CliError> {
    let mac = parse_mac_text(v).ok_or_else(|| {
        CliError::bad(
            name,
            format!("'{v}' is not a MAC address xx:xx:xx:xx:xx:xx"),
        )
    })?;
    if mac[0] & 1 != 0 {
        return Err(CliError::bad(name, format!("{v} is a multicast address")));
    }
    if mac == [0; 6] {
        return Err(CliError::bad(
            name,
            "00:00:00:00:00:00 is not a valid MAC address",
        ));
    }
    Ok(mac)
}

/// `-d`: a Linux interface name.
pub(crate) fn ifname(name: &str, v: &str) -> Result<(), CliError> {
    if crate::tap::valid_ifname(v) {
        Ok(())
    } else {
        Err(CliError::bad(
            name,
            format!(
                "'{v}' is not a valid interface name (1..{IFNAME_MAX} bytes, no '/', ':' or spaces)"
            ),
        ))
    }
}

/// `--up-script` / `--down-script`: an absolute path (run without a shell
/// and without a `PATH` search).
pub(crate) fn script(name: &str, v: &str) -> Result<String, CliError> {
    if v.starts_with('/') && !v.contains('\0') {
        Ok(v.to_owned())
    } else {
        Err(CliError::bad(
            name,
            format!("'{v}' is not an absolute path (the script is run without a PATH search)"),
        ))
    }
}
