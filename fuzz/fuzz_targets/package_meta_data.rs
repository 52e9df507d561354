//! `package-meta-data.xml`: any file is read as a package or refused with a reason.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pyvmd::runtime::packages::check_meta_data;

fuzz_target!(|data: &[u8]| {
    match check_meta_data(data) {
        Ok(name) => assert!(!name.is_empty(), "a package without a name"),
        Err(reason) => assert!(!reason.is_empty(), "a refusal without a reason"),
    }
});
