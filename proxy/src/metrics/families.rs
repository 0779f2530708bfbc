//! The metric families of one process, each registered where it is made.
//!
//! [`Families::add`] registers a family and keeps it, so there is no second list to keep
//! in step with the fields: rendering declares every kept family that has no series yet
//! ([`super::declare`]).

use super::declare::declare_missing;
use prometheus::core::Collector;
use prometheus::{Encoder, Registry, TextEncoder};

/// A registry that keeps every family registered through it.
#[derive(Default)]
pub struct Families {
    registry: Registry,
    kept: Vec<Box<dyn Collector>>,
}

impl Families {
    /// Registers `family` (its name must be unique in the process) and returns it.
    pub fn add<C: Collector + Clone + 'static>(&mut self, family: C) -> C {
        self.registry
            .register(Box::new(family.clone()))
            .expect("metric names are unique");
        self.kept.push(Box::new(family.clone()));
        family
    }

    /// The registry, for collectors that always render their series (the process's own).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Every family in the Prometheus text format; a labelled family without series yet
    /// is declared by its `# HELP` and `# TYPE` lines alone.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 * 1024);
        let gathered = self.registry.gather();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&gathered, &mut out);
        let kept: Vec<&dyn Collector> = self.kept.iter().map(AsRef::as_ref).collect();
        declare_missing(&gathered, &kept, &mut out);
        out
    }
}
