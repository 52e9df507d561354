//! Commands beside `serve` for the people who run pyvmd and write packages for it: `health`
//! (does a server answer NETCONF?), `new-package` (a package skeleton that runs as it is) and
//! `check-packages` (what is wrong with a packages directory, without serving it).

pub mod check_packages;
pub mod health;
pub mod new_package;
