//! Signed-artifact formats the `hallmark sign` client assembles around a signature the server
//! made over a digest: the artifact never leaves the build machine, so hashing and assembling
//! happen here, on the client side, and the server only ever sees a digest (or, for
//! Authenticode, the small SpcIndirectDataContent it signs as CMS content).

pub mod authenticode;
pub mod cab;
pub mod cose;
pub mod jar;
pub mod mcuboot;
pub mod msi;
pub mod names;
pub mod openpgp;
