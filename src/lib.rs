//! esign-gateway: one gRPC API (`esign.v1.InvitationService`) in front of the
//! Leegality, signNow and Bynn e-signature APIs.
//!
//! The library exposes what the binary and the integration tests need to
//! start the real server in-process: configuration, the provider registry,
//! the server itself and the provider simulator.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod admin;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod idempotency;
pub mod metrics;
pub mod provider;
pub mod secret;
pub mod server;
pub mod simulator;
pub mod store;
pub mod telemetry;
pub mod validate;

/// Generated code of `proto/esign/v1/invitation_service.proto`.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("esign.v1");

    /// Descriptors of our own proto files, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/esign_descriptor.bin"));
}
