//! Where a record stands, as types: each state machine the tables keep (a certificate, a
//! certificate request, a signature request) is an enum read once from its row, so services
//! compare variants, not strings. The text forms are what the tables' CHECK constraints allow.

use super::StoreError;

/// Declares a record state: the enum, its text form both ways, Display, Serialize (as the
/// text). A backend stores the text form (the SQLite conversions are in `sqlite/states.rs`).
macro_rules! record_state {
    ($(#[$doc:meta])* $name:ident, $what:literal {
        $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)?
    }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every state, in the order the table declares them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(s: &str) -> Result<Self, StoreError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(StoreError::Schema(format!(
                        concat!("unknown ", $what, " '{}'"),
                        other
                    ))),
                }
            }

            /// The text forms, comma-separated (for messages).
            pub fn names() -> String {
                Self::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

record_state!(
    /// A certificate record: recorded before signing, signed and returned, or never to be
    /// signed. Revocation is recorded beside it.
    CertStatus, "certificate status" {
        Intent => "intent",
        Issued => "issued",
        Abandoned => "abandoned",
    }
);

record_state!(
    /// A certificate request: waiting for approvals, claimed by the deciding approval
    /// (`approved`), or ended.
    RequestStatus, "request status" {
        Pending => "pending",
        Approved => "approved",
        Denied => "denied",
        Expired => "expired",
        Issued => "issued",
        Cancelled => "cancelled",
    }
);

record_state!(
    /// A signature request: waiting for approvals, claimed for signing (`signing`), or ended.
    SignatureRequestStatus, "signature request status" {
        Pending => "pending",
        Signing => "signing",
        Signed => "signed",
        Denied => "denied",
        Expired => "expired",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

record_state!(
    /// An ACME account (RFC 8555 §7.1.6): usable, or closed by its holder or the server.
    AcmeAccountStatus, "ACME account status" {
        Valid => "valid",
        Deactivated => "deactivated",
        Revoked => "revoked",
    }
);

record_state!(
    /// An ACME order (RFC 8555 §7.1.6): authorizations outstanding, ready to finalize, being
    /// issued, issued, or failed.
    AcmeOrderStatus, "ACME order status" {
        Pending => "pending",
        Ready => "ready",
        Processing => "processing",
        Valid => "valid",
        Invalid => "invalid",
    }
);

record_state!(
    /// An ACME authorization (RFC 8555 §7.1.6).
    AcmeAuthzStatus, "ACME authorization status" {
        Pending => "pending",
        Valid => "valid",
        Invalid => "invalid",
        Deactivated => "deactivated",
        Expired => "expired",
        Revoked => "revoked",
    }
);

record_state!(
    /// An ACME challenge (RFC 8555 §7.1.6): waiting for the client, being validated, or decided.
    AcmeChallengeStatus, "ACME challenge status" {
        Pending => "pending",
        Processing => "processing",
        Valid => "valid",
        Invalid => "invalid",
    }
);
