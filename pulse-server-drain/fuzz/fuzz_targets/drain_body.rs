//! Fuzzes `parse_drain_body` (the body of `POST /_pulse/admin/drain`) with arbitrary bytes: it never
//! panics, and whatever it accepts is empty or a JSON object with `deadline_secs` at most 30 days.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulse_server_drain::parse_drain_body;

const MAX_DEADLINE_SECS: u64 = 30 * 24 * 3600;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = parse_drain_body(data) {
        assert!(request.deadline_secs.is_none_or(|s| s <= MAX_DEADLINE_SECS), "accepted {request:?}");
        let trimmed = data.trim_ascii();
        if !trimmed.is_empty() {
            let value: serde_json::Value = serde_json::from_slice(trimmed).expect("accepted JSON parses");
            assert!(value.is_object(), "accepted a JSON value that is not an object");
        }
    }
});
