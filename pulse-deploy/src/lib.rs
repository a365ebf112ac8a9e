//! # pulse-deploy
//!
//! The `pulse-deploy` command as a library: [`config`] (the strict `pulse-deploy.toml`), [`cli`] (the
//! command line), [`commands`] (what each subcommand does over the engine), [`table`] (the status table)
//! and [`history`] (the releases `rollback` can return to). The binary is a thin `main` over [`run`];
//! the engine itself (`pulse-deploy-core`) stays usable without any of this.

pub mod cli;
pub mod commands;
pub mod config;
pub mod history;
pub mod table;

pub use commands::{exit, run};
