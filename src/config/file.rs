//! One layer of configuration: a `hot` table as written in a manifest or a `--hot-config` file,
//! parsed and validated, nothing merged yet.
//!
//! `cargo metadata` hands us `[workspace.metadata.hot]` and each `[package.metadata.hot]` as
//! JSON, and a `--hot-config` file is TOML turned into the same JSON tree, so one walker checks
//! all three. The walker knows every key, so a typo is an error naming the file, the full key
//! path (`workspace.metadata.hot.targets.api.stop-timeout`) and what was expected, with a
//! "did you mean" for unknown keys. [`super::merge`] then layers the results.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{Map, Value};

use crate::duration::{check_poll_interval, duration_from_millis, parse_duration};
use crate::hooks::{Hook, Hooks, Stage};
use crate::process::Signal;
use crate::proxy::ProxySpec;
use crate::ready::{ReadyCheck, ReadySpec};
use crate::sockets::{ListenAddr, ListenSpec};
use crate::workspace::closest;

/// Where a layer comes from: what errors name and what relative paths start from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The manifest or `--hot-config` file.
    pub file: PathBuf,
    /// The table's key path in that file: `workspace.metadata.hot`, `package.metadata.hot`,
    /// or empty for a `--hot-config` file, whose top level is the table.
    pub table: String,
    /// The directory relative `cwd`, `listen = ["unix:…"]` and `watch` paths start from.
    pub base: PathBuf,
    pub kind: SourceKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// `[workspace.metadata.hot]` in the root manifest.
    Workspace,
    /// `[package.metadata.hot]` of the named member: only its own targets and watch entries.
    Package(String),
    /// A `--hot-config FILE`.
    File,
}

/// What one source says. `None` (or empty) is "not set here".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layer {
    pub run: Option<Vec<String>>,
    pub debounce: Option<Duration>,
    /// `Some(None)`: `poll = false`; `Some(Some(every))`: `poll = true` or an interval.
    pub poll: Option<Option<Duration>>,
    pub ignore: Vec<String>,
    /// `env-file`: a dotenv file every target reads; absolute.
    pub env_file: Option<PathBuf>,
    /// `clear`: clear the screen before each build.
    pub clear: Option<bool>,
    /// By the name as written: a bin name or `package/bin`.
    pub targets: BTreeMap<String, TargetLayer>,
    pub watch: Vec<WatchEntry>,
    /// Workspace-wide hooks.
    pub hooks: Hooks,
    /// `hook-timeout`: how long any hook may run before it is killed.
    pub hook_timeout: Option<Duration>,
}

/// `targets.<bin>`: how one target is run.
#[derive(Debug, Clone, Default)]
pub struct TargetLayer {
    pub args: Option<Vec<OsString>>,
    pub env: BTreeMap<String, String>,
    /// `env-file`: a dotenv file this target reads too; absolute.
    pub env_file: Option<PathBuf>,
    /// Absolute: joined to the source's base directory.
    pub cwd: Option<PathBuf>,
    pub listen: Option<Vec<ListenAddr>>,
    /// `proxy = "127.0.0.1:3000"`: serve this address through cargo hot's proxy.
    pub proxy: Option<SocketAddr>,
    /// `proxy-port-env`: the variable a proxied run reads its port from.
    pub proxy_port_env: Option<String>,
    pub ready: Option<ReadyCheck>,
    pub signal: Option<Signal>,
    pub stop_timeout: Option<Duration>,
    pub overlap: Option<bool>,
    /// This target's own hooks, run after the workspace-wide ones.
    pub hooks: Hooks,
}

impl PartialEq for TargetLayer {
    fn eq(&self, other: &Self) -> bool {
        // `ReadyCheck` holds a regex, which has no equality: compare what it says.
        self.args == other.args
            && self.env == other.env
            && self.env_file == other.env_file
            && self.cwd == other.cwd
            && self.listen == other.listen
            && self.proxy == other.proxy
            && self.proxy_port_env == other.proxy_port_env
            && self.ready.as_ref().map(ReadyCheck::describe)
                == other.ready.as_ref().map(ReadyCheck::describe)
            && self.signal == other.signal
            && self.stop_timeout == other.stop_timeout
            && self.overlap == other.overlap
            && self.hooks == other.hooks
    }
}

/// `[[watch]]`: files outside the Rust build that still matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEntry {
    /// Globs, relative to `base`.
    pub paths: Vec<String>,
    pub base: PathBuf,
    pub action: WatchAction,
    /// Target names as written; empty: the owning package's targets.
    pub targets: Vec<String>,
    /// The key path of this entry, for errors found when it is applied.
    pub key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchAction {
    /// Rebuild the targets even if no package owns the paths.
    Rebuild,
    /// Restart the targets with their current executable: no cargo call.
    Restart,
    /// Never react to these paths.
    Ignore,
}

pub(super) const TOP_KEYS: &[&str] = &[
    "run",
    "debounce",
    "poll",
    "ignore",
    "env-file",
    "clear",
    "targets",
    "watch",
    "before-build",
    "after-build",
    "before-start",
    "hook-timeout",
];
const PACKAGE_KEYS: &[&str] = &["targets", "watch"];
const TARGET_KEYS: &[&str] = &[
    "args",
    "env",
    "env-file",
    "cwd",
    "listen",
    "proxy",
    "proxy-port-env",
    "ready",
    "signal",
    "stop-timeout",
    "overlap",
    "before-build",
    "after-build",
    "before-start",
];
const WATCH_KEYS: &[&str] = &["paths", "action", "targets"];

/// Reads and parses a `--hot-config` file.
pub fn read_file(path: &Path, base: &Path) -> Result<Layer> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read the config file {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    let value = serde_json::to_value(table)
        .with_context(|| format!("failed to read the TOML of {}", path.display()))?;
    let source = Source {
        file: path.to_path_buf(),
        table: String::new(),
        base: base.to_path_buf(),
        kind: SourceKind::File,
    };
    parse(&value, &source)
}

/// Parses one `hot` table.
pub fn parse(value: &Value, source: &Source) -> Result<Layer> {
    let ctx = Ctx { source };
    let table = ctx.table(value, &source.table)?;
    let allowed = match source.kind {
        SourceKind::Package(_) => PACKAGE_KEYS,
        _ => TOP_KEYS,
    };
    let mut layer = Layer::default();
    for (key, value) in table {
        let path = ctx.join(&source.table, key);
        if !allowed.contains(&key.as_str()) {
            if TOP_KEYS.contains(&key.as_str()) {
                bail!(
                    "{}: `{path}` is not allowed in a package's table: a member's [package.metadata.hot] holds only `targets` and `watch`; put `{key}` in [workspace.metadata.hot]",
                    source.file.display()
                );
            }
            return Err(ctx.unknown(&path, key, allowed));
        }
        match key.as_str() {
            "run" => layer.run = Some(ctx.strings(value, &path)?),
            "debounce" => layer.debounce = Some(ctx.duration(value, &path)?),
            "poll" => {
                layer.poll = Some(match value {
                    Value::Bool(false) => None,
                    Value::Bool(true) => Some(Duration::from_millis(500)),
                    other => {
                        let every = ctx.duration(other, &path).map_err(|_| {
                            ctx.expected(&path, "true, false or an interval like \"500ms\"", other)
                        })?;
                        Some(check_poll_interval(every).map_err(|e| ctx.invalid(&path, e))?)
                    }
                })
            }
            "ignore" => layer.ignore = ctx.strings(value, &path)?,
            "env-file" => layer.env_file = Some(ctx.path(value, &path)?),
            "clear" => match value {
                Value::Bool(b) => layer.clear = Some(*b),
                other => return Err(ctx.expected(&path, "true or false", other)),
            },
            "hook-timeout" => {
                let timeout = ctx.duration(value, &path)?;
                if timeout.is_zero() {
                    return Err(ctx.invalid(
                        &path,
                        anyhow!("a hook timeout of 0 would kill every hook at once: give a duration such as \"10m\""),
                    ));
                }
                layer.hook_timeout = Some(timeout);
            }
            "before-build" | "after-build" | "before-start" => {
                let (stage, hook) = ctx.hook(key, value, &path)?;
                layer.hooks.set(stage, hook);
            }
            "targets" => {
                for (name, value) in ctx.table(value, &path)? {
                    let target_path = ctx.join(&path, name);
                    layer
                        .targets
                        .insert(name.clone(), ctx.target(value, &target_path)?);
                }
            }
            "watch" => {
                let Value::Array(entries) = value else {
                    return Err(ctx.expected(
                        &path,
                        "an array of tables ([[…watch]] entries)",
                        value,
                    ));
                };
                for (i, entry) in entries.iter().enumerate() {
                    layer.watch.push(ctx.watch(entry, &format!("{path}[{i}]"))?);
                }
            }
            _ => unreachable!("every allowed key is handled"),
        }
    }
    Ok(layer)
}

/// The walker's state: which source it reports errors against.
struct Ctx<'a> {
    source: &'a Source,
}

impl Ctx<'_> {
    fn join(&self, path: &str, key: &str) -> String {
        let key = if key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            key.to_string()
        } else {
            format!("\"{key}\"")
        };
        if path.is_empty() {
            key
        } else {
            format!("{path}.{key}")
        }
    }

    fn file(&self) -> String {
        self.source.file.display().to_string()
    }

    fn expected(&self, path: &str, what: &str, found: &Value) -> anyhow::Error {
        let shown = if path.is_empty() {
            "the top level"
        } else {
            path
        };
        anyhow!(
            "{}: `{shown}`: expected {what}, found {}",
            self.file(),
            describe(found)
        )
    }

    fn unknown(&self, path: &str, key: &str, allowed: &[&str]) -> anyhow::Error {
        let names: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        let hint = closest(&names, key)
            .map(|s| format!("\nhelp: did you mean `{s}`?"))
            .unwrap_or_default();
        anyhow!(
            "{}: unknown key `{path}`; expected one of: {}{hint}",
            self.file(),
            allowed.join(", ")
        )
    }

    fn invalid(&self, path: &str, error: anyhow::Error) -> anyhow::Error {
        error.context(format!("{}: invalid `{path}`", self.file()))
    }

    fn table<'v>(&self, value: &'v Value, path: &str) -> Result<&'v Map<String, Value>> {
        match value {
            Value::Object(map) => Ok(map),
            other => Err(self.expected(path, "a table", other)),
        }
    }

    fn string<'v>(&self, value: &'v Value, path: &str) -> Result<&'v str> {
        match value {
            Value::String(s) => Ok(s),
            other => Err(self.expected(path, "a string", other)),
        }
    }

    /// A path relative to the source's base directory, made absolute.
    fn path(&self, value: &Value, path: &str) -> Result<PathBuf> {
        let text = self.string(value, path)?;
        Ok(super::normalize(&self.source.base.join(text)))
    }

    fn strings(&self, value: &Value, path: &str) -> Result<Vec<String>> {
        let Value::Array(items) = value else {
            return Err(self.expected(path, "an array of strings", value));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                self.string(item, &format!("{path}[{i}]"))
                    .map(str::to_string)
            })
            .collect()
    }

    fn duration(&self, value: &Value, path: &str) -> Result<Duration> {
        match value {
            Value::String(text) => parse_duration(text).map_err(|e| self.invalid(path, e)),
            Value::Number(n) => match n.as_u64() {
                Some(ms) => duration_from_millis(ms).map_err(|e| self.invalid(path, e)),
                None => Err(self.expected(path, "a duration like \"10s\" or \"50ms\"", value)),
            },
            other => Err(self.expected(path, "a duration like \"10s\" or \"50ms\"", other)),
        }
    }

    fn target(&self, value: &Value, path: &str) -> Result<TargetLayer> {
        let mut target = TargetLayer::default();
        for (key, value) in self.table(value, path)? {
            let key_path = self.join(path, key);
            match key.as_str() {
                "args" => {
                    target.args = Some(
                        self.strings(value, &key_path)?
                            .into_iter()
                            .map(OsString::from)
                            .collect(),
                    )
                }
                "env" => {
                    for (name, value) in self.table(value, &key_path)? {
                        let var_path = self.join(&key_path, name);
                        if name.is_empty() || name.contains('=') || name.contains('\0') {
                            bail!(
                                "{}: `{var_path}`: an environment variable name must be non-empty and hold no `=`",
                                self.file()
                            );
                        }
                        let text = match value {
                            Value::String(s) => s.clone(),
                            Value::Number(n) => n.to_string(),
                            Value::Bool(b) => b.to_string(),
                            other => {
                                return Err(self.expected(&var_path, "a string", other));
                            }
                        };
                        target.env.insert(name.clone(), text);
                    }
                }
                "cwd" => target.cwd = Some(self.path(value, &key_path)?),
                "env-file" => target.env_file = Some(self.path(value, &key_path)?),
                "listen" => {
                    let addrs = match value {
                        Value::String(s) => vec![s.clone()],
                        other => self.strings(other, &key_path)?,
                    };
                    let parsed = addrs
                        .iter()
                        .map(|text| {
                            let spec = ListenSpec::parse(text, &self.source.base)
                                .map_err(|e| self.invalid(&key_path, e))?;
                            if spec.target.is_some() {
                                bail!(
                                    "{}: `{key_path}`: `{text}` names a target; under targets.<bin> write the address alone",
                                    self.file()
                                );
                            }
                            Ok(spec.addr)
                        })
                        .collect::<Result<Vec<_>>>()?;
                    target.listen = Some(parsed);
                }
                "proxy" => {
                    let text = self.string(value, &key_path)?;
                    let spec = ProxySpec::parse(text, &self.source.base)
                        .map_err(|e| self.invalid(&key_path, e))?;
                    if spec.target.is_some() {
                        bail!(
                            "{}: `{key_path}`: `{text}` names a target; under targets.<bin> write the address alone",
                            self.file()
                        );
                    }
                    target.proxy = Some(spec.addr);
                }
                "proxy-port-env" => {
                    let name = self.string(value, &key_path)?;
                    if name.is_empty() || name.contains(['=', '\0']) {
                        bail!(
                            "{}: `{key_path}`: `{name}` is not an environment variable name (e.g. \"APP_PORT\")",
                            self.file()
                        );
                    }
                    target.proxy_port_env = Some(name.to_string());
                }
                "ready" => {
                    let text = self.string(value, &key_path)?;
                    let spec = ReadySpec::parse(text).map_err(|e| self.invalid(&key_path, e))?;
                    if spec.target.is_some() {
                        bail!(
                            "{}: `{key_path}`: `{text}` names a target; under targets.<bin> write the check alone",
                            self.file()
                        );
                    }
                    target.ready = Some(spec.check);
                }
                "signal" => {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        other => {
                            return Err(self.expected(
                                &key_path,
                                "a signal name like \"SIGINT\"",
                                other,
                            ))
                        }
                    };
                    target.signal = Some(text.parse().map_err(|e| self.invalid(&key_path, e))?);
                }
                "stop-timeout" => target.stop_timeout = Some(self.duration(value, &key_path)?),
                "overlap" => match value {
                    Value::Bool(b) => target.overlap = Some(*b),
                    other => return Err(self.expected(&key_path, "true or false", other)),
                },
                "before-build" | "after-build" | "before-start" => {
                    let (stage, hook) = self.hook(key, value, &key_path)?;
                    target.hooks.set(stage, hook);
                }
                _ => return Err(self.unknown(&key_path, key, TARGET_KEYS)),
            }
        }
        Ok(target)
    }

    fn hook(&self, key: &str, value: &Value, path: &str) -> Result<(Stage, Hook)> {
        let stage = match key {
            "before-build" => Stage::BeforeBuild,
            "after-build" => Stage::AfterBuild,
            _ => Stage::BeforeStart,
        };
        let command = self.string(value, path)?;
        if command.trim().is_empty() {
            return Err(self.expected(path, "a shell command", value));
        }
        let hook = Hook {
            command: command.to_string(),
            key: path.to_string(),
        };
        Ok((stage, hook))
    }

    fn watch(&self, value: &Value, path: &str) -> Result<WatchEntry> {
        let table = self.table(value, path)?;
        let mut paths = None;
        let mut action = None;
        let mut targets = Vec::new();
        for (key, value) in table {
            let key_path = self.join(path, key);
            match key.as_str() {
                "paths" => {
                    let globs = self.strings(value, &key_path)?;
                    for (i, glob) in globs.iter().enumerate() {
                        globset::Glob::new(glob).map_err(|e| {
                            anyhow!(
                                "{}: `{key_path}[{i}]`: `{glob}` is not a valid glob: {e}",
                                self.file()
                            )
                        })?;
                    }
                    paths = Some(globs);
                }
                "action" => {
                    action = Some(match self.string(value, &key_path)? {
                        "rebuild" => WatchAction::Rebuild,
                        "restart" => WatchAction::Restart,
                        "ignore" => WatchAction::Ignore,
                        other => bail!(
                            "{}: `{key_path}`: expected \"rebuild\", \"restart\" or \"ignore\", found \"{other}\"",
                            self.file()
                        ),
                    })
                }
                "targets" => targets = self.strings(value, &key_path)?,
                _ => return Err(self.unknown(&key_path, key, WATCH_KEYS)),
            }
        }
        let Some(paths) = paths.filter(|p| !p.is_empty()) else {
            bail!(
                "{}: `{path}` needs `paths`: a non-empty array of globs",
                self.file()
            );
        };
        let Some(action) = action else {
            bail!(
                "{}: `{path}` needs `action`: \"rebuild\", \"restart\" or \"ignore\"",
                self.file()
            );
        };
        if action == WatchAction::Ignore && !targets.is_empty() {
            bail!(
                "{}: `{path}`: `targets` means nothing with action = \"ignore\"; remove it",
                self.file()
            );
        }
        Ok(WatchEntry {
            paths,
            base: self.source.base.clone(),
            action,
            targets,
            key: path.to_string(),
        })
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string \"{s}\""),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "a table".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace_source() -> Source {
        Source {
            file: PathBuf::from("/ws/Cargo.toml"),
            table: "workspace.metadata.hot".into(),
            base: PathBuf::from("/ws"),
            kind: SourceKind::Workspace,
        }
    }

    fn toml_value(text: &str) -> Value {
        let table: toml::Table = toml::from_str(text).unwrap();
        serde_json::to_value(table).unwrap()
    }

    fn parse_ws(text: &str) -> Result<Layer> {
        parse(&toml_value(text), &workspace_source())
    }

    fn error(text: &str) -> String {
        format!("{:#}", parse_ws(text).unwrap_err())
    }

    /// A configuration saved by a Windows editor has CRLF line endings: it means the same.
    #[test]
    fn crlf_line_endings_mean_the_same() {
        let text = "run = [\"api\"]\ndebounce = \"50ms\"\n\n[targets.api]\nargs = [\"--port\", \"3000\"]\nsignal = \"SIGINT\"\n";
        let lf = parse_ws(text).unwrap();
        let crlf = parse_ws(&text.replace('\n', "\r\n")).unwrap();
        assert_eq!(format!("{lf:?}"), format!("{crlf:?}"));
        assert_eq!(crlf.targets["api"].signal, Some(Signal::INT));
    }

    #[test]
    fn every_key_of_the_documented_shape() {
        let layer = parse_ws(
            r#"
            run = ["api", "worker"]
            debounce = "50ms"
            poll = false
            ignore = ["docs/**", "*.log"]
            before-build = "npx tailwindcss -i in.css -o out.css"
            after-build = "cargo sqlx prepare"

            [targets.api]
            args = ["--port", "3000"]
            env = { RUST_LOG = "debug", THREADS = 4 }
            cwd = "api"
            listen = ["127.0.0.1:3000", "unix:run/api.sock"]
            proxy = ":8080"
            proxy-port-env = "APP_PORT"
            ready = "http://127.0.0.1:3001/health"
            signal = "SIGINT"
            stop-timeout = "10s"
            overlap = true
            before-start = "test -f api/.env"

            [[watch]]
            paths = ["api/templates/**", "config/*.toml"]
            action = "restart"
            targets = ["api"]
            "#,
        )
        .unwrap();
        assert_eq!(layer.run, Some(vec!["api".into(), "worker".into()]));
        assert_eq!(layer.debounce, Some(Duration::from_millis(50)));
        assert_eq!(layer.poll, Some(None));
        assert_eq!(layer.ignore, ["docs/**", "*.log"]);
        assert_eq!(
            layer
                .hooks
                .before_build
                .as_ref()
                .map(|h| h.command.as_str()),
            Some("npx tailwindcss -i in.css -o out.css")
        );
        assert_eq!(
            layer.hooks.after_build.as_ref().map(|h| h.key.as_str()),
            Some("workspace.metadata.hot.after-build")
        );
        assert!(error("before-build = \"\"").contains("expected a shell command"));
        assert!(error("after-build = [\"a\"]")
            .contains("`workspace.metadata.hot.after-build`: expected a string"));
        let api = &layer.targets["api"];
        assert_eq!(
            api.args,
            Some(vec![OsString::from("--port"), OsString::from("3000")])
        );
        assert_eq!(api.env["RUST_LOG"], "debug");
        assert_eq!(api.env["THREADS"], "4");
        assert_eq!(api.cwd, Some(PathBuf::from("/ws/api")));
        assert_eq!(
            api.listen,
            Some(vec![
                ListenAddr::Tcp("127.0.0.1:3000".parse().unwrap()),
                ListenAddr::Unix(PathBuf::from("/ws/run/api.sock")),
            ])
        );
        assert_eq!(api.proxy, Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(api.proxy_port_env.as_deref(), Some("APP_PORT"));
        assert_eq!(
            api.ready.as_ref().map(ReadyCheck::describe),
            Some(
                ReadySpec::parse("http://127.0.0.1:3001/health")
                    .unwrap()
                    .check
                    .describe()
            )
        );
        assert_eq!(api.signal, Some(Signal::INT));
        assert_eq!(api.stop_timeout, Some(Duration::from_secs(10)));
        assert_eq!(api.overlap, Some(true));
        assert_eq!(
            api.hooks.before_start,
            Some(Hook {
                command: "test -f api/.env".into(),
                key: "workspace.metadata.hot.targets.api.before-start".into(),
            })
        );
        assert_eq!(
            layer.watch,
            [WatchEntry {
                paths: vec!["api/templates/**".into(), "config/*.toml".into()],
                base: PathBuf::from("/ws"),
                action: WatchAction::Restart,
                targets: vec!["api".into()],
                key: "workspace.metadata.hot.watch[0]".into(),
            }]
        );
    }

    #[test]
    fn poll_and_durations_take_several_forms() {
        assert_eq!(
            parse_ws("poll = true").unwrap().poll,
            Some(Some(Duration::from_millis(500)))
        );
        assert_eq!(
            parse_ws("poll = \"2s\"").unwrap().poll,
            Some(Some(Duration::from_secs(2)))
        );
        assert_eq!(
            parse_ws("debounce = 120").unwrap().debounce,
            Some(Duration::from_millis(120))
        );
        assert_eq!(parse_ws("").unwrap(), Layer::default());
        assert!(error("poll = \"often\"").contains("`workspace.metadata.hot.poll`"));
        for zero in ["poll = 0", "poll = \"0ms\""] {
            let e = error(zero);
            assert!(
                e.contains("`workspace.metadata.hot.poll`") && e.contains("the minimum is 10ms"),
                "{zero}: {e}"
            );
        }
        for huge in [
            "debounce = 9223372036854775807",
            "debounce = \"9999999999999999999s\"",
        ] {
            let e = error(huge);
            assert!(
                e.contains("`workspace.metadata.hot.debounce`") && e.contains("24h"),
                "{huge}: {e}"
            );
        }
    }

    #[test]
    fn hook_timeout_is_a_positive_duration() {
        assert_eq!(
            parse_ws("hook-timeout = \"30s\"").unwrap().hook_timeout,
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_ws("").unwrap().hook_timeout, None);
        let e = error("hook-timeout = \"0s\"");
        assert!(
            e.contains("`workspace.metadata.hot.hook-timeout`") && e.contains("10m"),
            "{e}"
        );
        assert!(error("hook-timeout = true").contains("expected a duration"));
    }

    #[test]
    fn errors_name_file_key_and_expectation() {
        let e = error("[targets.api]\nstop-timeout = true");
        assert!(e.contains("/ws/Cargo.toml"), "{e}");
        assert!(
            e.contains("`workspace.metadata.hot.targets.api.stop-timeout`: expected a duration"),
            "{e}"
        );
        assert!(e.contains("found the boolean true"), "{e}");

        let e = error("[targets.api]\nproxy = \"web=3000\"");
        assert!(e.contains("write the address alone"), "{e}");
        let e = error("[targets.api]\nproxy = \"unix:/tmp/s\"");
        assert!(
            e.contains("invalid `workspace.metadata.hot.targets.api.proxy`"),
            "{e}"
        );
        assert!(e.contains("TCP only"), "{e}");
        let e = error("[targets.api]\nproxy-port-env = \"A=B\"");
        assert!(e.contains("not an environment variable name"), "{e}");

        let e = error("[targets.api]\nstop-timeout = \"10 parsecs\"");
        assert!(
            e.contains("invalid `workspace.metadata.hot.targets.api.stop-timeout`"),
            "{e}"
        );
        assert!(e.contains("unknown unit"), "{e}");

        let e = error("run = \"api\"");
        assert!(
            e.contains("`workspace.metadata.hot.run`: expected an array of strings"),
            "{e}"
        );
        let e = error("run = [\"api\", 3]");
        assert!(e.contains("`workspace.metadata.hot.run[1]`"), "{e}");
        let e = error("[targets.api]\nsignal = \"SIGFOO\"");
        assert!(e.contains("unknown signal"), "{e}");
        let e = error("[targets.api]\nready = \"soon\"");
        assert!(e.contains("targets.api.ready"), "{e}");
        let e = error("[targets.api]\nlisten = [\"nowhere:at:all\"]");
        assert!(e.contains("targets.api.listen"), "{e}");
        let e = error("[targets.api]\nenv = { A = [1] }");
        assert!(
            e.contains("`workspace.metadata.hot.targets.api.env.A`"),
            "{e}"
        );
        let e = error("targets = 1");
        assert!(e.contains("expected a table"), "{e}");
    }

    #[test]
    fn unknown_keys_suggest_the_closest() {
        let e = error("debounse = \"1s\"");
        assert!(
            e.contains("unknown key `workspace.metadata.hot.debounse`"),
            "{e}"
        );
        assert!(e.contains("did you mean `debounce`?"), "{e}");
        let e = error("[targets.api]\nstop_timeout = \"1s\"");
        assert!(
            e.contains("`workspace.metadata.hot.targets.api.stop_timeout`"),
            "{e}"
        );
        assert!(e.contains("did you mean `stop-timeout`?"), "{e}");
        let e = error("[[watch]]\npaths = [\"a\"]\naction = \"ignore\"\ntarget = [\"x\"]");
        assert!(e.contains("watch[0].target`"), "{e}");
        assert!(e.contains("did you mean `targets`?"), "{e}");
        let e = error("completely-unrelated = 1");
        assert!(!e.contains("did you mean"), "{e}");
    }

    #[test]
    fn watch_entries_are_checked() {
        let e = error("[[watch]]\npaths = [\"a/**\"]\naction = \"reload\"");
        assert!(e.contains("\"rebuild\", \"restart\" or \"ignore\""), "{e}");
        let e = error("[[watch]]\naction = \"restart\"");
        assert!(e.contains("needs `paths`"), "{e}");
        let e = error("[[watch]]\npaths = [\"a/[\"]\naction = \"restart\"");
        assert!(e.contains("not a valid glob"), "{e}");
        let e = error("watch = { paths = [\"a\"] }");
        assert!(e.contains("expected an array of tables"), "{e}");
    }

    #[test]
    fn package_tables_hold_only_targets_and_watch() {
        let source = Source {
            file: PathBuf::from("/ws/api/Cargo.toml"),
            table: "package.metadata.hot".into(),
            base: PathBuf::from("/ws/api"),
            kind: SourceKind::Package("api".into()),
        };
        let layer = parse(
            &toml_value("[targets.api]\ncwd = \"data\"\n[[watch]]\npaths = [\"templates/**\"]\naction = \"restart\""),
            &source,
        )
        .unwrap();
        assert_eq!(
            layer.targets["api"].cwd,
            Some(PathBuf::from("/ws/api/data"))
        );
        assert_eq!(layer.watch[0].base, PathBuf::from("/ws/api"));
        let e = format!(
            "{:#}",
            parse(&toml_value("run = [\"api\"]"), &source).unwrap_err()
        );
        assert!(
            e.contains("`package.metadata.hot.run` is not allowed"),
            "{e}"
        );
    }

    #[test]
    fn config_file_is_the_table_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hot.toml");
        std::fs::write(&path, "debounce = \"1s\"\n[targets.api]\noverlap = false\n").unwrap();
        let layer = read_file(&path, Path::new("/ws")).unwrap();
        assert_eq!(layer.debounce, Some(Duration::from_secs(1)));
        assert_eq!(layer.targets["api"].overlap, Some(false));
        std::fs::write(&path, "[targets.api]\noverlap = 1\n").unwrap();
        let e = format!("{:#}", read_file(&path, Path::new("/ws")).unwrap_err());
        assert!(
            e.contains("hot.toml: `targets.api.overlap`: expected true or false"),
            "{e}"
        );
        std::fs::write(&path, "debounce = \n").unwrap();
        let e = format!("{:#}", read_file(&path, Path::new("/ws")).unwrap_err());
        assert!(e.contains("is not valid TOML"), "{e}");
        let e = format!(
            "{:#}",
            read_file(&dir.path().join("missing.toml"), Path::new("/ws")).unwrap_err()
        );
        assert!(e.contains("failed to read the config file"), "{e}");
    }
}
