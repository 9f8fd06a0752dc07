//! What the engine needs to start a proxied target: which address serves which target, the
//! port a run is told to bind (in its environment and `{port}` in its arguments), and when a
//! run counts as ready. Pure functions, so the rules are unit-tested here.

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr};

use anyhow::{bail, Result};

use super::{Binding, ProxySpec};
use crate::ready::ReadyCheck;
use crate::sockets::target_matches;
use crate::workspace::TargetId;

/// The variable a run reads its port from unless `proxy-port-env` names another.
pub const DEFAULT_PORT_ENV: &str = "PORT";

/// Each `--proxy` spec with the target it serves: the one it names, or the only target
/// selected. Two specs may not serve the same address.
pub fn bindings(specs: &[ProxySpec], targets: &[TargetId]) -> Result<Vec<Binding>> {
    let mut out: Vec<Binding> = Vec::new();
    for spec in specs {
        let target = match &spec.target {
            Some(name) => match targets.iter().find(|t| target_matches(name, t)) {
                Some(target) => target,
                None => bail!(
                    "--proxy {name}={}: `{name}` is not a selected target (selected: {})",
                    spec.addr,
                    names(targets)
                ),
            },
            None => match targets {
                [only] => only,
                _ => bail!(
                    "--proxy {}: several targets are selected ({}); say which one serves it, \
                     e.g. --proxy {}={}",
                    spec.addr,
                    names(targets),
                    targets.first().map_or("NAME", |t| t.name.as_str()),
                    spec.addr
                ),
            },
        };
        if let Some(other) = out.iter().find(|b| b.addr == spec.addr) {
            bail!(
                "--proxy {} is given twice (for `{}` and `{}`)",
                spec.addr,
                other.target,
                target.name
            );
        }
        out.push(Binding {
            target: target.to_string(),
            addr: spec.addr,
        });
    }
    Ok(out)
}

fn names(targets: &[TargetId]) -> String {
    let names: Vec<String> = targets.iter().map(ToString::to_string).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// The run's arguments with every `{port}` replaced by its port.
pub fn substitute_port(args: &[OsString], port: u16) -> Vec<OsString> {
    let port = port.to_string();
    args.iter()
        .map(|arg| match arg.to_str() {
            Some(text) if text.contains("{port}") => text.replace("{port}", &port).into(),
            _ => arg.clone(),
        })
        .collect()
}

/// The variable that tells a run its port.
pub fn port_env(name: &str, port: u16) -> (OsString, OsString) {
    (name.into(), port.to_string().into())
}

/// When a run on `port` is ready: its configured check if it has one, else when its port
/// accepts a connection.
pub fn ready_check(configured: &ReadyCheck, port: u16) -> ReadyCheck {
    match configured {
        ReadyCheck::Started => ReadyCheck::Tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str) -> TargetId {
        TargetId {
            package: "pkg".into(),
            name: name.into(),
            kind: crate::workspace::RunKind::Bin,
        }
    }

    fn spec(target: Option<&str>, port: u16) -> ProxySpec {
        ProxySpec {
            target: target.map(str::to_string),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        }
    }

    #[test]
    fn a_spec_serves_the_target_it_names_or_the_only_one() {
        let web = [target("web")];
        assert_eq!(
            bindings(&[spec(None, 3000)], &web).unwrap(),
            vec![Binding {
                target: "web".into(),
                addr: "127.0.0.1:3000".parse().unwrap()
            }]
        );
        let two = [target("web"), target("api")];
        let found = bindings(&[spec(Some("api"), 3000), spec(Some("web"), 3001)], &two).unwrap();
        assert_eq!(found[0].target, "api");
        assert_eq!(found[1].target, "web");
    }

    #[test]
    fn unclear_specs_say_what_to_write() {
        let two = [target("web"), target("api")];
        let error = bindings(&[spec(None, 3000)], &two).unwrap_err().to_string();
        assert!(error.contains("--proxy web=127.0.0.1:3000"), "{error}");
        let error = bindings(&[spec(Some("db"), 3000)], &two)
            .unwrap_err()
            .to_string();
        assert!(error.contains("`db` is not a selected target"), "{error}");
        let error = bindings(&[spec(Some("web"), 3000), spec(Some("api"), 3000)], &two)
            .unwrap_err()
            .to_string();
        assert!(error.contains("given twice"), "{error}");
    }

    #[test]
    fn the_port_reaches_args_and_environment() {
        let args: Vec<OsString> = vec!["--bind".into(), "127.0.0.1:{port}".into(), "-v".into()];
        assert_eq!(
            substitute_port(&args, 4123),
            vec![
                OsString::from("--bind"),
                "127.0.0.1:4123".into(),
                "-v".into()
            ]
        );
        assert_eq!(
            port_env("APP_PORT", 4123),
            (OsString::from("APP_PORT"), OsString::from("4123"))
        );
    }

    #[test]
    fn ready_means_the_port_accepts_unless_configured() {
        assert_eq!(
            ready_check(&ReadyCheck::Started, 4123),
            ReadyCheck::Tcp("127.0.0.1:4123".parse().unwrap())
        );
        let log = ReadyCheck::Log(regex::Regex::new("listening").unwrap());
        assert_eq!(ready_check(&log, 4123), log);
    }
}
