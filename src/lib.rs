//! esign-gateway: one gRPC API (`esign.v1.InvitationService`) in front of the
//! Leegality, signNow and Bynn e-signature APIs.
//!
//! The library exposes what the binary and the integration tests need to
//! start the real server in-process: configuration, the provider registry,
//! the server itself and the provider simulator.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod admin;
mod audit;
mod auth;
pub mod cli;
mod clock;
pub mod config;
mod demo;
mod domain;
mod error;
mod events;
mod grpc;
mod idempotency;
mod metrics;
mod provider;
pub mod secret;
pub mod server;
pub mod simulator;
mod store;
pub mod telemetry;
mod validate;

pub use domain::ProviderKind;
pub use error::ERROR_DOMAIN;

/// Generated code of `proto/esign/v1/invitation_service.proto`.
pub mod pb {
    #![allow(clippy::all, missing_docs, unused_qualifications, unreachable_pub)]
    tonic::include_proto!("esign.v1");

    /// Descriptors of our own proto files, served by reflection.
    pub(crate) const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/esign_descriptor.bin"));
}
