//! NSO keypaths as the Python API sends them: resolved against the schema, and read, set and
//! deleted in a transaction; anything is done or refused with an error.

#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use pyvmd::datastore::keypath;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The keypath, then a value on the next line.
    let (path, value) = text.split_once('\n').unwrap_or((text, ""));
    let ds = common::datastore();
    let _ = keypath::parse(path);
    let _ = keypath::resolve(ds.context(), None, path);
    let _ = keypath::find_schema(ds.context(), path);
    let Ok(mut trans) = ds.transaction(true) else {
        return;
    };
    let _ = trans.get_elem(path);
    let _ = trans.exists(path);
    let _ = trans.num_instances(path);
    let _ = trans.keys(path);
    let _ = trans.set_elem(path, value);
    let _ = trans.create(path);
    let _ = trans.get_elem(path);
    let _ = trans.validate();
    let _ = trans.delete(path);
});
