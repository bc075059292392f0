//! End to end through the `confab-host` binary, as a user runs it.
