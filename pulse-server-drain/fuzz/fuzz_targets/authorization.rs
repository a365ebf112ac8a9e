//! Fuzzes `bearer_token` (the `Authorization` header parse of the admin paths): the input is split at
//! `\n` into header values (those `http` refuses are dropped, as a server never sees them). It never
//! panics, and a token is returned only for exactly one header `<bearer, any case> <spaces> <token>
//! [spaces/tabs]` whose token is non-empty and has no space or tab.
#![no_main]

use http::{header::AUTHORIZATION, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use pulse_server_drain::bearer_token;

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for part in data.split(|&b| b == b'\n').take(4) {
        if let Ok(v) = HeaderValue::from_bytes(part) {
            headers.append(AUTHORIZATION, v);
        }
    }
    if let Some(token) = bearer_token(&headers) {
        let values: Vec<&HeaderValue> = headers.get_all(AUTHORIZATION).iter().collect();
        assert_eq!(values.len(), 1, "a token from more than one header");
        let raw = values[0].as_bytes();
        assert!(raw.len() > 7 && raw[..6].eq_ignore_ascii_case(b"bearer") && raw[6] == b' ', "scheme: {raw:?}");
        assert!(!token.is_empty() && !token.iter().any(|&b| b == b' ' || b == b'\t'), "token: {token:?}");
        assert_eq!(raw[7..].trim_ascii(), token, "the token is the rest of the value, trimmed");
    }
});
