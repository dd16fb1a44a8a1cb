//! The record states as SQLite values: stored as their text form, which the tables' CHECK
//! constraints list; a value no state has is a schema fault, not a panic.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::store::{
    AcmeAccountStatus, AcmeAuthzStatus, AcmeChallengeStatus, AcmeOrderStatus, CertStatus,
    RequestStatus, SignatureRequestStatus,
};

macro_rules! sql_text {
    ($($name:ident),+) => {$(
        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
                $name::parse(v.as_str()?).map_err(|e| FromSqlError::Other(Box::new(e)))
            }
        }
    )+};
}

sql_text!(
    CertStatus,
    RequestStatus,
    SignatureRequestStatus,
    AcmeAccountStatus,
    AcmeOrderStatus,
    AcmeAuthzStatus,
    AcmeChallengeStatus
);
