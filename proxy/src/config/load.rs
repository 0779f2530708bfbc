//! The one loading pipeline, shared by start-up, `mcp-edge check` and SIGHUP reload:
//!
//! read → size limits → `${VAR}` expansion → size limits (nodes, aliases expanded; depth)
//! → YAML → JSON Schema → typed [`Config`] (bounded durations and counts) → cross-field
//! checks → filter chain.
//!
//! Every stage reports all of its problems; a stage runs only when the ones before it
//! succeeded (conversion and schema problems are reported together).

use super::diagnostics::{is_under, render_path, ConfigError, ConfigErrors, Problem, Seg};
use super::expand::{expand, Lookup};
use super::locate::LineIndex;
use super::model::Config;
use super::secret::Redactor;
use super::upstream_tls::{self, UpstreamTlsSet};
use super::{checks, convert, limits, typed, validate};
use mcp_edge_filters::ChainFactory;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A configuration that passed every check, with the chain built from it.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The file it was loaded from (as given).
    pub path: PathBuf,
    /// Hex SHA-256 of the raw file bytes, before expansion.
    pub source_sha256: String,
    /// The typed configuration, after expansion and defaults.
    pub config: Config,
    /// The filter chain of this generation.
    pub chain: ChainFactory,
    /// The TLS clients of the groups with `https://` servers, built from their files.
    pub upstream_tls: UpstreamTlsSet,
}

/// Reads, expands, validates and builds the configuration in `path`. Returns every
/// problem found, each naming the file, the line and the path.
pub fn load_file(path: &Path) -> Result<LoadedConfig, ConfigErrors> {
    let bytes = std::fs::read(path).map_err(|error| {
        single(
            path,
            None,
            format!("cannot read the configuration file: {error}"),
        )
    })?;
    let source = std::str::from_utf8(&bytes).map_err(|error| {
        let offset = error.valid_up_to();
        let line = bytes[..offset].iter().filter(|b| **b == b'\n').count() + 1;
        single(
            path,
            Some(line),
            format!("the file is not valid UTF-8 (invalid byte at offset {offset})"),
        )
    })?;
    load_with_env(path, source, &process_env)
}

/// Like [`load_file`], for a configuration already in memory (the demo uses it).
/// `path_for_messages` only names the source in errors and in [`LoadedConfig::path`].
pub fn load_str(path_for_messages: &Path, source: &str) -> Result<LoadedConfig, ConfigErrors> {
    load_with_env(path_for_messages, source, &process_env)
}

/// The process environment.
fn process_env(name: &str) -> Result<String, std::env::VarError> {
    std::env::var(name)
}

/// The pipeline, with the environment lookup injectable for tests.
pub(crate) fn load_with_env(
    path: &Path,
    source: &str,
    env: Lookup<'_>,
) -> Result<LoadedConfig, ConfigErrors> {
    let source_sha256 = hex::encode(Sha256::digest(source.as_bytes()));
    let plain = Redactor::default();
    let no_index = LineIndex::default();
    let early = |problems: Vec<Problem>, index: &LineIndex| finish(path, problems, index, &plain);

    limits::check_size(source, "the file").map_err(|p| early(vec![p], &no_index))?;
    let expanded = expand(source, env).map_err(|problems| early(problems, &no_index))?;
    limits::check_size(&expanded, "the file after ${VAR} expansion")
        .map_err(|p| early(vec![p], &no_index))?;
    let index = limits::scan(&expanded).map_err(|(index, p)| early(vec![p], &index))?;

    let mut yaml: serde_yaml::Value = serde_yaml::from_str(&expanded)
        .map_err(|error| early(vec![yaml_problem("invalid YAML: ", &error)], &no_index))?;
    yaml.apply_merge()
        .map_err(|error| early(vec![yaml_problem("invalid YAML: ", &error)], &no_index))?;

    let convert::Converted {
        json,
        mut problems,
        masked,
    } = convert::to_json(&yaml);
    let redactor = Redactor::from_document(&json);
    let report =
        |problems: Vec<Problem>, index: &LineIndex| finish(path, problems, index, &redactor);
    problems.extend(
        validate::validate(&json)
            .into_iter()
            .filter(|p| !masked.iter().any(|m| is_under(&p.path, m))),
    );
    if !problems.is_empty() {
        return Err(report(problems, &index));
    }

    let config = typed::deserialize(&json).map_err(|problems| report(problems, &index))?;

    let mut problems = checks::check(&config);
    let (upstream_tls, tls_problems) = upstream_tls::build(&config);
    problems.extend(tls_problems);
    let chain = match ChainFactory::build(&config.filters) {
        Ok(chain) => Some(chain),
        Err(errors) => {
            problems.extend(errors.iter().map(|error| {
                let mcp_edge_filters::ChainError::DuplicateKind { repeat, .. } = error;
                let at = vec![Seg::Key("filters".into()), Seg::Index(*repeat)];
                Problem::at(at, error.to_string())
            }));
            None
        }
    };
    match chain {
        Some(chain) if problems.is_empty() => Ok(LoadedConfig {
            path: path.to_path_buf(),
            source_sha256,
            config,
            chain,
            upstream_tls,
        }),
        _ => Err(report(problems, &index)),
    }
}

/// A serde_yaml error, at its line.
fn yaml_problem(prefix: &str, error: &serde_yaml::Error) -> Problem {
    let line = error.location().map(|l| l.line());
    Problem::at_line(line, format!("{prefix}{error}"))
}

fn single(path: &Path, line: Option<usize>, message: String) -> ConfigErrors {
    finish(
        path,
        vec![Problem::at_line(line, message)],
        &LineIndex::default(),
        &Redactor::default(),
    )
}

/// Ties problems to the file and their lines, removes secret values, drops duplicates,
/// and sorts by line.
fn finish(
    path: &Path,
    problems: Vec<Problem>,
    index: &LineIndex,
    redactor: &Redactor,
) -> ConfigErrors {
    let mut errors: Vec<ConfigError> = Vec::with_capacity(problems.len());
    let mut seen = std::collections::HashSet::new();
    for problem in problems {
        let error = ConfigError {
            file: path.to_path_buf(),
            line: problem.line.or_else(|| index.line_of(&problem.path)),
            path: render_path(&problem.path),
            message: redactor.scrub(problem.message),
        };
        if seen.insert((error.line, error.path.clone(), error.message.clone())) {
            errors.push(error);
        }
    }
    errors.sort_by_key(|e| e.line.unwrap_or(0));
    ConfigErrors(errors)
}
