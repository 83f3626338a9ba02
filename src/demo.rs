//! Demo mode.
