//! placeholder
use super::CommandSpec;
pub const COMMANDS: &[CommandSpec] = &[];
