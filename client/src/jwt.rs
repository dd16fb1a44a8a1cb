//! The shape of a JWT, for telling an OIDC identity token from a hallmark token before it is
//! sent (the server checks everything else).

/// Whether a bearer credential has a JWT's shape (three base64url parts).
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.=".contains(&b))
}
