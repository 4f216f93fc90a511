//! A user's state: the in-memory model ([`model`]) and its on-disk formats. Version 1 is
//! one TOML file ([`format`], [`format_v1`]); version 2 splits it by how often it changes:
//! the enrollment file ([`enrollment_v2`], TOML, changed by enroll, new recovery codes and
//! disable) and the counters record ([`counters_v2`], binary, changed by every login).

pub mod counters_v2;
pub mod enrollment_v2;
pub mod format;
mod format_v1;
pub mod hosts;
pub mod model;

pub use hosts::{RememberedHost, RemoteHost};
pub use model::{Enrolled, LastSuccess, Method, State, Throttle};

#[cfg(test)]
mod pins;
