//! `mcp-edge healthcheck [-c FILE | --admin ADDR] [--path P]`: asks the admin listener of
//! the running process, so that a container image needs no curl. Exit 0 when it answers
//! a success, 1 otherwise (with the reason on stderr).

use super::admin_client;
use crate::config;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;

/// Runs the health check against `admin`, or the admin listener of the config file.
pub fn run(config_path: &Path, admin: Option<SocketAddr>, path: &str) -> ExitCode {
    let admin = match admin {
        Some(admin) => admin,
        None => match admin_address(config_path) {
            Ok(admin) => admin,
            Err(message) => {
                eprintln!("healthcheck: {message}");
                return ExitCode::FAILURE;
            }
        },
    };
    let target = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    match admin_client::probe(reachable(admin), &target) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("healthcheck: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The admin address of the config file at `config_path`.
fn admin_address(config_path: &Path) -> Result<SocketAddr, String> {
    let loaded = config::load_file(config_path).map_err(|errors| errors.to_string())?;
    let admin = loaded
        .config
        .admin
        .ok_or_else(|| format!("{}: no admin listener is configured", config_path.display()))?;
    admin
        .address
        .parse()
        .map_err(|e| format!("admin.address: {e}"))
}

/// An unspecified listen address (`0.0.0.0`, `[::]`) is reached on the loopback.
fn reachable(admin: SocketAddr) -> SocketAddr {
    match admin.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), admin.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), admin.port())
        }
        _ => admin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_are_reached_on_the_loopback() {
        let any: SocketAddr = "0.0.0.0:9901".parse().unwrap();
        assert_eq!(reachable(any), "127.0.0.1:9901".parse().unwrap());
        let any6: SocketAddr = "[::]:9901".parse().unwrap();
        assert_eq!(reachable(any6), "[::1]:9901".parse().unwrap());
        let pod: SocketAddr = "10.0.0.7:9901".parse().unwrap();
        assert_eq!(reachable(pod), pod);
    }
}
