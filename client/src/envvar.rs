//! Options that name an environment variable holding a secret (`--token-env`, `--pin-env`,
//! `--passphrase-env`): the message when it is unset never echoes a value given by mistake.

/// Whether `s` is a plausible environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_variable_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What to say when the variable `name` (meant to hold `what`, e.g. "the API token") is not
/// set. A value that looks like a token, or is no variable name at all (a PIN, a passphrase),
/// is not repeated: it was probably the secret itself.
pub fn unset_message(option: &str, name: &str, what: &str) -> String {
    if name
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("hmk_"))
    {
        return format!(
            "the value of {option} looks like a token: pass the name of the variable that holds it (e.g. {option} HALLMARK_TOKEN), not the token"
        );
    }
    if !is_variable_name(name) {
        return format!(
            "{option} takes the name of an environment variable that holds {what} (letters, digits and '_'); the value given is not one, and is not shown"
        );
    }
    format!("environment variable {name} ({what}) is not set")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_given_by_mistake_are_not_echoed() {
        let token = "hmk_0123456789ab_s3cr3tS3cr3t";
        let m = unset_message("--token-env", token, "the API token");
        assert!(!m.contains("s3cr3t"), "{m}");
        assert!(m.contains("looks like a token"), "{m}");
        let m = unset_message("--pin-env", "123456", "the HSM PIN");
        assert!(!m.contains("123456"), "{m}");
        let m = unset_message("--passphrase-env", "correct horse", "the passphrase");
        assert!(!m.contains("horse"), "{m}");
        let m = unset_message("--token-env", "CI_TOKEN", "the API token");
        assert_eq!(
            m,
            "environment variable CI_TOKEN (the API token) is not set"
        );
    }
}
