//! Bynn poller: placeholder replaced below.
