"""Schemathesis hooks for hallmark's OpenAPI run (tests/schemathesis.rs).

- Binary request bodies (OCSP requests, RFC 3161 queries, NDJSON provisioning lines) have no
  JSON schema to generate from: they are drawn as raw bytes, mixed with real requests the test
  wrote beside the CA (so the success paths are exercised too).
- Path parameters are often replaced by names and ids that exist on the test CA (its CA names,
  a real serial, a key label, the ACME profile), so the run reaches past 404.

The test sets HALLMARK_ST_FIXTURES to a JSON file: {"bodies": {media type: [hex, ...]},
"params": {name: [value, ...]}}.
"""

import json
import os

import schemathesis
from hypothesis import strategies as st

with open(os.environ["HALLMARK_ST_FIXTURES"], encoding="utf-8") as f:
    FIXTURES = json.load(f)


def _bytes_for(media_type):
    real = [bytes.fromhex(h) for h in FIXTURES.get("bodies", {}).get(media_type, [])]
    drawn = st.binary(max_size=2048)
    return st.one_of(st.sampled_from(real), drawn) if real else drawn


for _media in ("application/ocsp-request", "application/timestamp-query", "application/x-ndjson"):
    schemathesis.openapi.media_type(_media, _bytes_for(_media))


@schemathesis.hook
def flatmap_path_parameters(ctx, params):
    known = FIXTURES.get("params", {})
    if not params or not any(k in known for k in params):
        return st.just(params)
    replaced = dict(params)
    for k in params:
        if k in known and known[k]:
            replaced[k] = known[k][0]
    choices = [params, replaced]
    for k in params:
        for v in known.get(k, [])[1:]:
            choices.append({**replaced, k: v})
    return st.sampled_from(choices)
