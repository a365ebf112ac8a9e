//! Cross-crate integration and end-to-end tests of pulse-deploy, and the end-to-end runner behind
//! `cargo xtask e2e` (binary `pulse-e2e`).
//!
//! - [`session`]: a simulated user of the demo app (page load, WebSocket, every answer checked);
//! - [`load`]: a steady HTTP load through the router;
//! - [`controller`]: the deployer as a long-running loop (deploy = change the desired release);
//! - [`e2e`]: the scenario itself; [`report`] and [`timeline`]: what it writes;
//! - [`faults`]: helpers of the fault tests (`tests/faults_*.rs`) and the `pulse-deployer` binary they kill.

pub mod controller;
pub mod e2e;
pub mod faults;
pub mod http;
pub mod load;
pub mod report;
pub mod session;
pub mod timeline;
