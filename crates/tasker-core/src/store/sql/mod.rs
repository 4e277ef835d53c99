//! What the two SQL stores share, written once: the migration runner, row decoding, error mapping and the
//! helpers that bind filters.
//!
//! The SQL text itself stays with each store (`store/sqlite`, `store/postgres`): the claim, the locks and the
//! batch statements are written in each database's own dialect, which is where the stores differ on purpose.
//! What lives here is the Rust around the SQL, which does not differ: which columns make a row, how a row
//! becomes a [`crate::model`] value, when a migration must run, how a driver error becomes a crate error.

pub(crate) mod error;
pub(crate) mod migrate;
pub(crate) mod query;
pub(crate) mod rows;
