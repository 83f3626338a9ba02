//! Webhook intake: placeholder replaced below.
