//! `hallmark request`, `approve` and `deny`: certificate requests to a hallmark server, over its API.

use std::path::PathBuf;

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};

use super::{output, read_input, ServerArgs};

/// `hallmark request --profile P --csr F` submits; `hallmark request cancel ID` withdraws.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct RequestCmd {
    #[command(subcommand)]
    pub action: Option<RequestAction>,
    #[command(flatten)]
    pub submit: RequestArgs,
}

#[derive(Subcommand, Debug)]
pub enum RequestAction {
    /// Withdraw a pending request (its requester or an officer): it never issues or signs.
    Cancel {
        #[command(flatten)]
        server: ServerArgs,
        /// The request id (`hallmark request` or `hallmark sign` printed it).
        id: i64,
        /// The id is a signature request's, not a certificate request's.
        #[arg(long)]
        signature: bool,
    },
}

#[derive(Args, Debug)]
pub struct RequestArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[arg(long, required = true)]
    pub profile: Option<String>,
    /// CSR file (PEM or DER).
    #[arg(long, required = true)]
    pub csr: Option<PathBuf>,
    /// Publisher (officer tokens only; a publisher token uses its own).
    #[arg(long)]
    pub publisher: Option<String>,
    #[arg(long)]
    pub device_serial: Option<String>,
    #[arg(long)]
    pub name: Option<String>,
    /// Write the certificate and chain here (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// How long to wait for approvals, in seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Seconds between polls while approvals are pending.
    #[arg(long, default_value_t = 5)]
    pub poll: u64,
}

#[derive(Args, Debug)]
pub struct DecideArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The request id.
    pub id: i64,
    /// The id is a signature request's (`hallmark sign` printed it), not a certificate request's.
    #[arg(long)]
    pub signature: bool,
    #[arg(long)]
    pub comment: Option<String>,
}

pub fn cmd_request(a: &RequestArgs) -> anyhow::Result<()> {
    let (Some(profile), Some(csr_file)) = (&a.profile, &a.csr) else {
        bail!("hallmark request needs --profile and --csr (or: hallmark request cancel ID)");
    };
    let client = a.server.client()?;
    // Caught from before the request exists (see `hallmark sign`).
    let mut interrupts = client.interrupts()?;
    let csr = String::from_utf8(read_input(csr_file)?).unwrap_or_default();
    let csr = if csr.contains("BEGIN") {
        csr
    } else {
        crate::pemfmt::encode("CERTIFICATE REQUEST", read_input(csr_file)?)
    };
    let body = serde_json::json!({
        "profile": profile, "csr": csr, "publisher": a.publisher,
        "device_serial": a.device_serial, "name": a.name,
    });
    let mut body = body;
    if let Some(o) = body.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    let reply = client.send(
        "POST",
        "/api/v1/certificates",
        Some("application/json"),
        body.to_string().into_bytes(),
    )?;
    let cert = match reply.status {
        201 => reply.json()?,
        202 => {
            let id = reply.json()?["request_id"]
                .as_i64()
                .ok_or_else(|| anyhow!("202 without a request id"))?;
            eprintln!(
                "request {id} waits for approvals; polling for up to {} s (Ctrl-C cancels it)",
                a.timeout
            );
            let path = format!("/api/v1/requests/{id}");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(a.timeout);
            loop {
                if client.pause(
                    std::time::Duration::from_secs(a.poll.max(1)),
                    &mut interrupts,
                ) {
                    bail!(
                        "interrupted while request {id} waited for approvals; {}",
                        client.cancel(&path)
                    );
                }
                let r = client.send("GET", &path, None, vec![])?;
                if r.status != 200 {
                    bail!("request {id}: {} {}", r.status, r.problem());
                }
                let v = r.json()?;
                match v["status"].as_str() {
                    Some("issued") => {
                        let serial = v["certificate_serial"]
                            .as_str()
                            .ok_or_else(|| anyhow!("issued without a serial"))?;
                        let c = client.send(
                            "GET",
                            &format!("/api/v1/certificates/{serial}"),
                            None,
                            vec![],
                        )?;
                        if c.status != 200 {
                            bail!("certificate {serial}: {} {}", c.status, c.problem());
                        }
                        let mut v = c.json()?;
                        let chain = client.send_pem_chain(serial)?;
                        v["chain_pem"] = serde_json::Value::String(chain);
                        break v;
                    }
                    Some("pending") if std::time::Instant::now() < deadline => continue,
                    Some("pending") => bail!(
                        "request {id} was still waiting for approvals after {} s; {}",
                        a.timeout,
                        client.cancel(&path)
                    ),
                    Some(other) => bail!("request {id} was {other}; no certificate"),
                    None => bail!("request {id}: unexpected answer"),
                }
            }
        }
        s => bail!("the server refused: {s} {}", reply.problem()),
    };
    let text = match cert.get("chain_pem").and_then(|c| c.as_str()) {
        Some(chain) => chain.to_string(),
        None => {
            let mut t = cert["certificate"].as_str().unwrap_or_default().to_string();
            for c in cert["chain"].as_array().into_iter().flatten() {
                t.push_str(c.as_str().unwrap_or_default());
            }
            t
        }
    };
    if !text.contains("BEGIN CERTIFICATE") {
        bail!("the server's answer holds no certificate");
    }
    output(a.out.as_deref(), &text)?;
    eprintln!("issued serial {}", cert["serial"].as_str().unwrap_or("?"));
    Ok(())
}

pub fn cmd_decide(a: &DecideArgs, approve: bool) -> anyhow::Result<()> {
    let client = a.server.client()?;
    let body = match &a.comment {
        Some(c) => serde_json::json!({ "comment": c }).to_string().into_bytes(),
        None => b"{}".to_vec(),
    };
    let path = format!(
        "/api/v1/{}requests/{}/{}",
        if a.signature { "signatures/" } else { "" },
        a.id,
        if approve { "approve" } else { "deny" }
    );
    let r = client.send("POST", &path, Some("application/json"), body)?;
    if r.status != 200 {
        bail!("{} {}", r.status, r.problem());
    }
    let v = r.json()?;
    println!(
        "request {}: {} ({} approval(s) of {})",
        a.id,
        v["status"].as_str().unwrap_or("?"),
        v["approvals"]
            .as_array()
            .map(|x| x.iter().filter(|d| d["decision"] == "approve").count())
            .unwrap_or(0),
        v["approvals_required"]
    );
    if let Some(serial) = v["certificate"]["serial"].as_str() {
        println!("issued certificate {serial}");
    }
    if a.signature && v["status"] == "signed" {
        println!("signed: signature record {}", v["id"]);
    }
    Ok(())
}

/// `hallmark request cancel ID`: withdraws a pending request.
pub fn cmd_cancel(server: &ServerArgs, id: i64, signature: bool) -> anyhow::Result<()> {
    let client = server.client()?;
    let path = format!(
        "/api/v1/{}requests/{id}/cancel",
        if signature { "signatures/" } else { "" }
    );
    let r = client.send("POST", &path, None, vec![])?;
    if r.status != 200 {
        bail!("{} {}", r.status, r.problem());
    }
    println!(
        "{}request {id}: {}",
        if signature { "signature " } else { "" },
        r.json()?["status"].as_str().unwrap_or("?")
    );
    Ok(())
}
