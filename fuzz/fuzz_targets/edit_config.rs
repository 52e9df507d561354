//! `edit-config` applied to the candidate: any `<config>` content and default operation is
//! applied or refused with an error, and running is never touched by it.

#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use pyvmd::datastore::{Access, DatastoreName, EditOperation, EditRequest, TestOption};

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let Ok(config) = std::str::from_utf8(input) else {
        return;
    };
    let ds = common::datastore();
    let default_operation = match control % 3 {
        0 => EditOperation::Merge,
        1 => EditOperation::Replace,
        _ => EditOperation::None,
    };
    let test_option = match control & 4 {
        0 => TestOption::TestThenSet,
        _ => TestOption::TestOnly,
    };
    let running = ds.running();
    let _ = ds.edit(
        DatastoreName::Candidate,
        0,
        &EditRequest {
            config: config.to_owned(),
            default_operation,
            test_option,
            access: Access::unrestricted(),
        },
    );
    assert!(
        std::sync::Arc::ptr_eq(&running, &ds.running()),
        "an edit of the candidate changed running"
    );
    if control & 8 != 0 {
        let _ = ds.discard_changes(0);
    }
});
