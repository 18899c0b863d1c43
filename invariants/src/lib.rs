//! Checkers over recorded histories (see the crate docs in later commits).
