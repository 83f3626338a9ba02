//! The integration suite as one test binary (one link on a 2-core machine):
//! the real server over the network, against the provider simulator.

mod bynn;
mod common;
mod documents;
mod events;
mod faults;
mod foundation;
mod leegality;
mod redis;
mod resilience;
mod security;
mod signnow;
mod simulator;
mod telemetry;
