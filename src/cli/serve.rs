//! `hallmark serve`: the public and API listeners, started from the config.

use std::sync::Arc;

use anyhow::Context;

use super::{open, Cli};

pub(super) fn cmd_serve(
    cli: &Cli,
    public: Option<&str>,
    api: Option<&str>,
    no_api: bool,
) -> anyhow::Result<()> {
    let hm = Arc::new(open(cli)?);
    let parse = |a: &str| -> anyhow::Result<std::net::SocketAddr> {
        a.parse().with_context(|| format!("listen address '{a}'"))
    };
    let listen = crate::http::Listen {
        public: parse(public.unwrap_or(&hm.config.server.listen))?,
        api: if no_api {
            None
        } else {
            Some(parse(api.unwrap_or(&hm.config.api.listen))?)
        },
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(crate::http::serve(hm, listen, |b| {
        println!("hallmark public listener on http://{} (/healthz, /ca/NAME.crt, /crl/NAME.crl, /ocsp)", b.public);
        match b.api {
            Some((a, true)) => println!("hallmark API listener on https://{a} (/api/v1/, /readyz, /metrics)"),
            Some((a, false)) => {
                println!("hallmark API listener on http://{a} (/api/v1/, /readyz, /metrics)");
                tracing::warn!("the API is served over plain HTTP (api.transport = \"plain\"): tokens cross the network in clear. Development only.");
            }
            None => {}
        }
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
    }))?;
    Ok(())
}
