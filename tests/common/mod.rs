//! What the integration test crates share (each uses a part of it).

#![allow(dead_code)]

/// Whether this is a CI run (`CI=true`): a test whose tools are missing fails there instead of
/// passing with a notice.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// A loopback port that nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
}
