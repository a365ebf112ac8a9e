//! In-memory providers: test doubles and the reference implementation for provider authors.
