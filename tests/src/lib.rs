//! Shared fixtures for the cross-crate integration and end-to-end tests in `tests/tests/`.
