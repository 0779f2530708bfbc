//! `mcp-edge check` and `mcp-edge schema`, run as the built binary.
//!
//! - Every file under `conf/` is valid.
//! - Every fixture under `tests/fixtures/invalid/` is rejected (exit 1) with the errors its
//!   leading comments expect:
//!   - `# expect: TEXT @ LINE`: a stderr line starts with `FILE:LINE: ` and contains TEXT;
//!   - `# expect: TEXT`: some stderr line contains TEXT;
//!   - `# expect-count: N`: stderr holds exactly N errors (lines).
//! - `${VAR}` / `${VAR:-default}` expansion reads the child's environment.
//! - `mcp-edge schema` prints the committed schema.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Seed variable names that `conf/mcp-edge.yaml` reads; removed from the child so the
/// file's defaults apply, whatever the developer's shell holds.
const SEED_VARS: &[&str] = &[
    "SSE_SEND_TIMEOUT",
    "SSE_RAPID_YIELD_WINDOW_MS",
    "SSE_RAPID_YIELD_MAX",
    "SSE_KEEPALIVE_INTERVAL",
    "MCP_SESSION_POOL_CLEANUP_TIMEOUT",
    "SSE_TASK_GROUP_CLEANUP_TIMEOUT",
    "ANYIO_CANCEL_DELIVERY_PATCH_ENABLED",
    "ANYIO_CANCEL_DELIVERY_MAX_ITERATIONS",
    "GUNICORN_MAX_REQUESTS",
    "GUNICORN_MAX_REQUESTS_JITTER",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the package lives in the workspace")
        .to_path_buf()
}

/// `mcp-edge ARGS` run from the repository root, without the seed variables and the
/// test's own variables (unless `env` sets them).
fn mcp_edge(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mcp-edge"));
    command.args(args).current_dir(repo_root());
    for var in SEED_VARS {
        command.env_remove(var);
    }
    for var in ["MCP_EDGE_TEST_NEVER_SET", "MCP_EDGE_TEST_ALSO_UNSET"] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    command.output().expect("run mcp-edge")
}

fn check(file: &str, env: &[(&str, &str)]) -> Output {
    mcp_edge(&["check", "-c", file], env)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Files with `ext` under `dir` (relative to the root), recursively, as relative paths.
fn files(dir: &str, ext: &str) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, ext: &str, out: &mut Vec<String>) {
        let mut entries: Vec<_> = fs::read_dir(root.join(dir))
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let relative = path.strip_prefix(root).expect("under root").to_path_buf();
            if path.is_dir() {
                walk(root, &relative, ext, out);
            } else if path.extension().is_some_and(|e| e == ext) {
                out.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo_root(), Path::new(dir), ext, &mut out);
    out
}

/// The deployment-specific variables that the examples under `conf/examples/` read
/// without a default (`conf/examples/gunicorn-recycle.yaml`, `conf/examples/mcp-policy.yaml`,
/// `conf/examples/oauth.yaml`).
const EXAMPLE_ENV: &[(&str, &str)] = &[
    ("MCP_EDGE_LISTEN", "127.0.0.1:8080"),
    ("MCP_EDGE_ADMIN", "127.0.0.1:9901"),
    ("MCP_EDGE_RUN_DIR", "/run/mcp-edge"),
    ("SERVER_A", "127.0.0.1:8001"),
    ("SERVER_B", "127.0.0.1:8002"),
    ("MCP_EDGE_AFFINITY_KEY", "an-affinity-key-of-32-characters"),
    ("GUNICORN_PID_A", "/run/gunicorn-a.pid"),
    ("GUNICORN_PID_B", "/run/gunicorn-b.pid"),
    ("MCP_SERVER", "127.0.0.1:8001"),
    ("MCP_SLOW_SERVER", "127.0.0.1:8002"),
    ("MCP_EDGE_ALLOWED_ORIGIN", "https://app.example.com"),
    ("MCP_EDGE_RESOURCE", "https://mcp.example.com/mcp"),
    ("MCP_EDGE_ISSUER", "https://auth.example.com"),
    ("MCP_EDGE_JWKS_URI", "https://auth.example.com/jwks"),
];

#[test]
fn every_shipped_config_is_valid() {
    let confs = files("conf", "yaml");
    assert!(
        confs.len() >= 3,
        "expected the three profiles, found {confs:?}"
    );
    for conf in confs {
        let env = if conf.starts_with("conf/examples/") {
            EXAMPLE_ENV
        } else {
            &[]
        };
        let out = check(&conf, env);
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{conf} should be valid:\n{}",
            text(&out.stderr)
        );
        assert!(
            stdout.contains(&conf) && stdout.contains("valid"),
            "{conf}: unexpected stdout: {stdout}"
        );
    }
}

/// One `# expect:` line of a fixture.
struct Expectation {
    text: String,
    line: Option<usize>,
}

fn expectations(source: &str) -> (Vec<Expectation>, Option<usize>) {
    let mut expected = Vec::new();
    let mut count = None;
    for line in source.lines().filter_map(|l| l.strip_prefix("# expect")) {
        if let Some(n) = line.strip_prefix("-count:") {
            count = Some(n.trim().parse().expect("expect-count: N"));
        } else if let Some(rest) = line.strip_prefix(':') {
            let rest = rest.trim();
            let (text, at) = match rest.rsplit_once(" @ ") {
                Some((text, at)) => (text, Some(at.trim().parse().expect("@ LINE"))),
                None => (rest, None),
            };
            expected.push(Expectation {
                text: text.to_owned(),
                line: at,
            });
        }
    }
    (expected, count)
}

#[test]
fn every_invalid_fixture_is_rejected_as_expected() {
    let fixtures = files("tests/fixtures/invalid", "yaml");
    assert!(fixtures.len() >= 11, "found only {fixtures:?}");
    let mut failures = Vec::new();
    for fixture in &fixtures {
        let source = fs::read_to_string(repo_root().join(fixture)).expect("read fixture");
        let (expected, count) = expectations(&source);
        assert!(!expected.is_empty(), "{fixture} has no `# expect:` line");
        let out = check(fixture, &[]);
        let stderr = text(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        if out.status.code() != Some(1) {
            failures.push(format!("{fixture}: exit {:?}, not 1\n{stderr}", out.status));
            continue;
        }
        if !out.stdout.is_empty() {
            failures.push(format!(
                "{fixture}: unexpected stdout {}",
                text(&out.stdout)
            ));
        }
        for e in &expected {
            let prefix = e.line.map(|n| format!("{fixture}:{n}: "));
            let found = lines
                .iter()
                .any(|l| l.contains(&e.text) && prefix.as_ref().is_none_or(|p| l.starts_with(p)));
            if !found {
                let at = e.line.map(|n| format!(" at line {n}")).unwrap_or_default();
                failures.push(format!(
                    "{fixture}: no error{at} containing `{}` in:\n{stderr}",
                    e.text
                ));
            }
        }
        if let Some(n) = count {
            if lines.len() != n {
                failures.push(format!(
                    "{fixture}: expected {n} errors, got {}:\n{stderr}",
                    lines.len()
                ));
            }
        }
        for line in &lines {
            if !line.starts_with(&format!("{fixture}:")) {
                failures.push(format!(
                    "{fixture}: error line does not name the file: {line}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// The acceptance criterion, spelled out: `send_timeout: -1` plus an unknown key exits 1
/// and names both, each with its line.
#[test]
fn negative_send_timeout_and_unknown_key_are_both_named() {
    let fixture = "tests/fixtures/invalid/negative_send_timeout_and_unknown_key.yaml";
    let out = check(fixture, &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!(
        "{fixture}:23: filters[0].sse_guard.send_timeout: -1 is less than the minimum of 0"
    )));
    assert!(stderr.contains(&format!("{fixture}:9: server.bogus: unknown key `bogus`")));
}

const EXPANDED: &str = "\
version: 1
listeners:
  - address: ${MCP_EDGE_TEST_LISTEN}
upstreams:
  gateway:
    servers: [127.0.0.1:4444]
routes:
  - match: {path_prefix: /}
    upstream: gateway
filters:
  - sse_guard:
      send_timeout: ${MCP_EDGE_TEST_SEND_TIMEOUT:-30}
      keepalive_interval: ${MCP_EDGE_TEST_KEEPALIVE:--2}
";

#[test]
fn environment_variables_are_expanded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("expanded.yaml");
    fs::write(&file, EXPANDED).expect("write config");
    let file = file.to_string_lossy().into_owned();

    // ${VAR} from the environment, and the default of an unset ${VAR:-default} (-2).
    let out = check(&file, &[("MCP_EDGE_TEST_LISTEN", "127.0.0.1:18080")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            ":13: filters[0].sse_guard.keepalive_interval: -2 is less than the minimum of 0"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    // A set variable wins over the default.
    let env = [
        ("MCP_EDGE_TEST_LISTEN", "127.0.0.1:18080"),
        ("MCP_EDGE_TEST_KEEPALIVE", "5"),
        ("MCP_EDGE_TEST_SEND_TIMEOUT", "-7"),
    ];
    let stderr = text(&check(&file, &env).stderr);
    assert!(
        stderr.contains(":12: filters[0].sse_guard.send_timeout: -7 is less than the minimum of 0"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let env = [
        ("MCP_EDGE_TEST_LISTEN", "127.0.0.1:18080"),
        ("MCP_EDGE_TEST_KEEPALIVE", "5"),
    ];
    let out = check(&file, &env);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // ${VAR} without a default and unset: named, with its line.
    let stderr = text(&check(&file, &[("MCP_EDGE_TEST_KEEPALIVE", "5")]).stderr);
    assert!(
        stderr.contains(":3: environment variable `MCP_EDGE_TEST_LISTEN` is not set"),
        "{stderr}"
    );
}

#[test]
fn seed_variable_names_drive_the_reference_config() {
    let out = check("conf/mcp-edge.yaml", &[("SSE_SEND_TIMEOUT", "-1")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("filters[0].sse_guard.send_timeout: -1 is less than the minimum of 0"),
        "{stderr}"
    );
    let out = check("conf/mcp-edge.yaml", &[("GUNICORN_MAX_REQUESTS", "0")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn schema_subcommand_prints_the_committed_schema() {
    let out = mcp_edge(&["schema"], &[]);
    assert!(out.status.success());
    let committed =
        fs::read_to_string(repo_root().join("schema/mcp-edge.schema.json")).expect("schema");
    assert!(
        text(&out.stdout) == committed,
        "schema/mcp-edge.schema.json is stale; regenerate it with:\n  cargo run -p mcp-edge -- schema > schema/mcp-edge.schema.json"
    );
}

#[test]
fn unreadable_file_is_an_error_not_a_panic() {
    let out = check("conf/does-not-exist.yaml", &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("conf/does-not-exist.yaml: cannot read the configuration file"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("binary.yaml");
    fs::write(&file, [0xff, 0xfe, 0x00, b'\n', 0x80]).expect("write");
    let out = check(&file.to_string_lossy(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not valid UTF-8"));
}
