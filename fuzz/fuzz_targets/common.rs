//! What the fuzz targets share: the server's schema and a datastore with some data in it.

#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;

use pyvmd::datastore::{Access, Datastore, EditOperation, EditRequest, TestOption};
use pyvmd::netconf::capabilities::MODULE_FEATURES;
use pyvmd::yang::YangContext;

/// Running holds this from the start: lists with several entries, leaf-lists, a default.
const SEED_CONFIG: &str = r#"
<python-vm xmlns="http://tail-f.com/ns/ncs">
  <logging><level>level-debug</level></logging>
</python-vm>
<nacm xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-acm" xmlns:ncs="http://tail-f.com/ns/ncs">
  <groups>
    <group><name>ops</name><user-name>ann</user-name><user-name>bob</user-name></group>
    <group><name>admins</name><user-name>root</user-name></group>
  </groups>
  <rule-list><name>ops</name><group>ops</group>
    <rule><name>r1</name><module-name>tailf-ncs</module-name><path>/ncs:python-vm</path>
      <access-operations>read update</access-operations><action>deny</action></rule>
  </rule-list>
</nacm>
<system xmlns="urn:ietf:params:xml:ns:yang:ietf-system">
  <authentication>
    <user><name>ann</name><password>$1$abcdefgh$ZMx3YLwbFkz3IFUj2EKZ20</password></user>
  </authentication>
</system>
"#;

/// The server's own YANG modules, from the repository's `yang/`.
pub fn schema() -> &'static YangContext {
    static YANG: OnceLock<&'static YangContext> = OnceLock::new();
    YANG.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../yang");
        let yang = YangContext::load(&dir, MODULE_FEATURES).expect("the server's modules load");
        Box::leak(Box::new(yang))
    })
}

/// A datastore in a directory of its own whose running holds [`SEED_CONFIG`].
pub fn datastore() -> &'static Datastore {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    static DATASTORE: OnceLock<&'static Datastore> = OnceLock::new();
    DATASTORE.get_or_init(|| {
        let dir = DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"));
        let ds = Datastore::open(schema().context(), dir.path()).expect("the datastore opens");
        ds.edit_running(&EditRequest {
            config: SEED_CONFIG.to_owned(),
            default_operation: EditOperation::Merge,
            test_option: TestOption::TestThenSet,
            access: Access::unrestricted(),
        })
        .expect("the seed configuration is valid");
        Box::leak(Box::new(ds))
    })
}
