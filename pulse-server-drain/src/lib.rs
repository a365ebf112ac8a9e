//! # pulse-server-drain
//!
//! The server side of the pulse-deploy drain protocol (`docs/drain-protocol.md`) for Rust servers built
//! on axum/tower, and the demo app that the end-to-end flow deploys.
