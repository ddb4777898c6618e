//! Settings every gateway must share (generated root credentials, a generated SSE
//! master key): stored once by whichever gateway comes first, then read by all.

use crate::{Index, IndexError, Result};
use kura_backend::Write;

const SETTINGS: &str = "settings";

impl Index {
    /// The stored value of setting `name`, or `value` once this call stored it (true).
    pub async fn setting_or_init(&self, name: &str, value: Vec<u8>) -> Result<(Vec<u8>, bool)> {
        let mut write = Write::default();
        write
            .expect(name.as_bytes(), None)
            .put(name.as_bytes(), value.clone());
        if self.kv.write(SETTINGS, write).await?.applied() {
            self.sync().await?;
            return Ok((value, true));
        }
        let stored = self.kv.get(SETTINGS, name.as_bytes()).await?;
        // Settings are never removed: a failed guard means it is there.
        stored
            .map(|stored| (stored, false))
            .ok_or_else(|| IndexError::Decode(serde::de::Error::custom("a setting vanished")))
    }
}
