//! `--output json` on list and show commands (one document; lists as `{"items", "next"}`), and
//! a full page that says how to see more instead of stopping silently.

use crate::common::*;
use serde_json::Value;

fn json(ca: &TestCa, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["--output", "json"]);
    let out = ca.hm(&a);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
}

#[test]
fn lists_and_shows_print_json_and_say_when_there_is_more() {
    let ca = TestCa::new(Keys::Soft);
    ca.add_acme();
    let token = ca.token(&[
        "--publisher",
        "acme",
        "--scopes",
        "issue,sign",
        "--name",
        "ci",
    ]);

    let page = json(&ca, &["cert", "list", "--limit", "2"]);
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    let next = page["next"]
        .as_str()
        .expect("a full page names the next cursor");
    assert_eq!(items[1]["serial"], next);
    let page2 = json(&ca, &["cert", "list", "--limit", "2", "--after", next]);
    assert_ne!(page2["items"][0]["serial"], items[0]["serial"]);
    // Text: the page is printed, and standard error says how to go on.
    let out = run(&mut ca.cmd(&["cert", "list", "--limit", "2"]));
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("more follow: hallmark cert list --after {next}")),
        "{err}"
    );
    // A page that is not full says nothing more and has no next.
    let all = json(&ca, &["cert", "list", "--limit", "1000"]);
    assert!(all["next"].is_null());

    let cert = json(&ca, &["cert", "show", next]);
    assert_eq!(cert["serial"], next);
    assert!(cert["certificate"]
        .as_str()
        .is_some_and(|c| c.contains("BEGIN CERTIFICATE")));

    let tokens = json(&ca, &["token", "list"]);
    let t = &tokens["items"][0];
    assert_eq!(t["name"], "ci");
    assert_eq!(t["scopes"], serde_json::json!(["issue", "sign"]));
    let secret = token.rsplit('_').next().expect("secret");
    assert!(!tokens.to_string().contains(secret));

    let cas = json(&ca, &["ca", "list"]);
    assert!(cas["items"]
        .as_array()
        .expect("cas")
        .iter()
        .any(|c| c["name"] == "root" && c["role"] == "root"));
    assert_eq!(
        json(&ca, &["publisher", "show", "acme"])["org"],
        "Acme Corp"
    );
    assert_eq!(json(&ca, &["publisher", "list"])["items"][0]["id"], "acme");
    let audit = json(&ca, &["audit", "--limit", "3"]);
    assert_eq!(audit["items"].as_array().expect("events").len(), 3);
    assert!(json(&ca, &["key", "list"])["items"].is_array());
    // key show: the document the API answers, the policy included (with --policy too).
    ca.create_key("acme", "release", "p256", &[]);
    ca.hm(&[
        "key",
        "policy",
        "release",
        "--approvals",
        "1",
        "--approvers",
        "lead",
    ]);
    let key = json(&ca, &["key", "show", "release"]);
    assert_eq!(key["label"], "release");
    assert_eq!(key["publisher"], "acme");
    assert_eq!(key["algorithm"], "p256");
    assert!(key["certificate"]
        .as_str()
        .is_some_and(|c| c.contains("BEGIN CERTIFICATE")));
    assert_eq!(key["chain"].as_array().map(Vec::len), Some(1));
    assert_eq!(key["policy"]["approvals"], 1);
    assert_eq!(key["policy"]["approvers"], serde_json::json!(["lead"]));
    assert_eq!(key["policy"]["source"], "set");
    assert_eq!(json(&ca, &["key", "show", "release", "--policy"]), key);
    assert!(json(&ca, &["station", "list"])["items"].is_array());
    assert!(json(&ca, &["signature", "list"])["items"].is_array());
}
