//! Compiles the gRPC contract with protox (pure Rust, so no system `protoc` is
//! needed) and writes the descriptor set that server reflection serves.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTO_ROOT: &str = "proto";
const SERVICE_PROTO: &str = "proto/esign/v1/invitation_service.proto";
const EVENT_PROTO: &str = "proto/esign/v1/event_service.proto";
const VENDORED_STATUS_PROTO: &str = "proto/google/rpc/status.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // tonic-prost-build 0.14 no longer emits these itself (grpc/grpc-rust#2511).
    println!("cargo:rerun-if-changed={SERVICE_PROTO}");
    println!("cargo:rerun-if-changed={EVENT_PROTO}");
    println!("cargo:rerun-if-changed={VENDORED_STATUS_PROTO}");
    println!("cargo:rerun-if-changed=build.rs");

    let file_descriptors = protox::compile([SERVICE_PROTO, EVENT_PROTO], [PROTO_ROOT])?;

    // Reflection needs every file our service depends on, so the whole set
    // is written (google/protobuf/*, and google/rpc/status.proto, which
    // tonic-types' own descriptors name plain "status.proto").
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("esign_descriptor.bin"),
        file_descriptors.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // The same google.rpc.Status that tonic-types' StatusExt works with.
        .extern_path(".google.rpc.Status", "::tonic_types::Status")
        // Documents are large: keep them in a shared buffer, not a Vec copy.
        .bytes(".esign.v1.LeegalityOptions.file")
        .bytes(".esign.v1.UploadDocumentRequest.chunk")
        .bytes(".esign.v1.DownloadDocumentResponse.chunk")
        .compile_fds(file_descriptors)?;
    Ok(())
}
