//! The client of Kura's admin API (JSON under `/_kura/admin/v1` on the S3 listener, signed
//! with SigV4): typed errors, request signing, connection settings and size parsing. Both
//! `kura admin` and `kura provisioner` use it; it knows nothing of the server's internals.

mod client;
mod connection;
pub mod size;

pub use client::{API_PREFIX, AdminError, Client, Credentials};
pub use connection::{Connection, DEFAULT_ENDPOINT};
