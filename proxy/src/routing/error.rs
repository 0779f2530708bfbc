//! Why a group of a new generation could not be built. The messages name the config key,
//! because they reach the operator as a reload or start-up error.

/// A group that could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GroupBuildError {
    /// Its TLS files (`upstreams.<name>.tls`) could not be read; they were checked when the
    /// config was loaded, so one changed since.
    #[error("upstreams.{group}.tls: {message}")]
    TlsFiles {
        /// The group.
        group: String,
        /// What the file check said.
        message: String,
    },
    /// One of its servers.
    #[error("upstreams.{group}.servers: `{address}`: {problem}")]
    Server {
        /// The group.
        group: String,
        /// The server as written in the config.
        address: String,
        /// What is wrong with it.
        problem: ServerProblem,
    },
}

/// What is wrong with one server of a group.
#[derive(Debug, thiserror::Error)]
pub enum ServerProblem {
    /// The address does not parse (checked at load, so this is a config changed since).
    #[error("{0}")]
    Address(String),
    /// The name does not resolve.
    #[error("cannot resolve: {0}")]
    Resolve(#[source] std::io::Error),
    /// The name resolves to nothing.
    #[error("resolves to no address")]
    NoAddress,
    /// An `https://` server in a group without a TLS client.
    #[error("no TLS client was built for this https:// server")]
    NoTlsClient,
    /// The name to verify is not a TLS server name.
    #[error("`{name}` is not a valid TLS server name: {source}")]
    ServerName {
        /// The name.
        name: String,
        /// Why rustls refuses it.
        #[source]
        source: rustls::pki_types::InvalidDnsNameError,
    },
}

/// Why the route table of a new generation could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RouteTableError {
    /// A group could not be built.
    #[error(transparent)]
    Group(#[from] GroupBuildError),
    /// A route's policy (its own filters, its globs).
    #[error("routes[{index}]: {source}")]
    Policy {
        /// The route's index in the config.
        index: usize,
        /// What failed.
        #[source]
        source: super::policy::PolicyBuildError,
    },
    /// A route names a group that does not exist (checked at load; kept for the table's
    /// own callers).
    #[error("routes[{index}].upstream: no upstream named `{upstream}`")]
    UnknownUpstream {
        /// The route's index in the config.
        index: usize,
        /// The name it gives.
        upstream: String,
    },
}
