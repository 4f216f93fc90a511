//! A user's state: the in-memory model ([`model`]) and its on-disk formats, chosen by
//! version in [`format`] (today version 1, in [`format_v1`]; a version 2 goes beside it).

pub mod format;
mod format_v1;
pub mod model;

pub use model::{Enrolled, LastSuccess, Method, State, Throttle};

#[cfg(test)]
mod pins;
