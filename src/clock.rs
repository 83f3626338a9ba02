//! Wall-clock time that tests can move forward. The simulator and the
//! gateway share one in tests, so token lifetimes and cooldowns expire
//! without sleeping.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};

#[derive(Clone, Default)]
pub struct Clock {
    offset: Arc<Mutex<chrono::Duration>>,
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        // The one place that reads the wall clock.
        #[allow(clippy::disallowed_methods)]
        let now = Utc::now();
        now + *self.offset.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves time forward (cooldowns, expiries, token lifetimes).
    pub fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap_or_else(|e| e.into_inner()) +=
            chrono::Duration::from_std(by).unwrap_or_default();
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clock").field("now", &self.now()).finish()
    }
}
