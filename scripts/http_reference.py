#!/usr/bin/env python3
"""Writes docs/reference/http.md, the HTTP API reference, from openapi.yaml: every path and
method with its summary, listener, credential, parameters, bodies and answers, and the problem
types. `make docs` runs it; tests/it/docs_book.rs fails when the committed page differs from
what this prints (`--stdout`). Needs pyyaml (in .venv, which `make deps` makes)."""

import pathlib
import re
import sys

try:
    import yaml
except ImportError:  # pragma: no cover - a message, not a traceback
    sys.exit("http_reference.py: pyyaml is missing: run `make deps` (it installs it into .venv)")

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPEC = ROOT / "openapi.yaml"
PAGE = ROOT / "docs" / "reference" / "http.md"
METHODS = ("get", "head", "post", "put", "patch", "delete")
LISTENERS = {
    "api": "API listener",
    "acme": "API listener (ACME)",
    "public": "public listener",
}


def one_line(text):
    """A description as one Markdown line (table cells and list items)."""
    return " ".join(str(text or "").split()).replace("|", "\\|")


def resolve(spec, node):
    """Follows one local `$ref`."""
    if isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        target = spec
        for part in ref[2:].split("/"):
            target = target[part]
        return ref.rsplit("/", 1)[1], target
    return None, node


def kind_item(kind):
    """`uri-too-long (414)` as `` `uri-too-long` (414) ``."""
    name, _, rest = kind.partition(" ")
    return f"- `{name}`" + (f" {rest}" if rest else "")


def kinds(description, prefix):
    """The list of kinds in a problem type's description: 'PREFIX followed by one of: a, b, c.'"""
    text = " ".join(description.split())
    found = re.search(r"followed by one of:?\s*(.*?)\.(\s|$)", text)
    assert found, f"no list of kinds after {prefix} in: {text}"
    return [k.strip() for k in found.group(1).split(",") if k.strip()]


def fields(spec, schema):
    """A JSON schema's top-level fields: (name, required, description), `$ref`s followed."""
    _, schema = resolve(spec, schema or {})
    required = set(schema.get("required", []))
    out = []
    for name, prop in (schema.get("properties") or {}).items():
        ref, prop = resolve(spec, prop)
        desc = one_line(prop.get("description"))
        if ref and not desc:
            desc = ref
        out.append((name, name in required, desc))
    return out


def credential(op):
    security = op.get("security")
    if security:
        return "token (`Authorization: Bearer`: a hallmark token or a CI job's OIDC token)"
    return None


def render(spec):
    out = []
    w = out.append
    info = spec["info"]
    w("# The HTTP API")
    w("")
    w(
        "<!-- Generated from openapi.yaml by scripts/http_reference.py (`make docs`); do not edit: "
        "tests/it/docs_book.rs fails when this page differs from what the script writes. -->"
    )
    w("")
    w(
        f"{one_line(info.get('summary'))} This page is generated from "
        "[openapi.yaml](../../openapi.yaml) (OpenAPI "
        f"{spec['openapi']}), which a test keeps in step with the routes the server serves; "
        "schemathesis checks every answer against it in `make test`."
    )
    w("")
    w(info["description"].strip())
    w("")
    w("## Listeners")
    w("")
    for server in spec.get("servers", []):
        w(f"- {server['description']}: `{server['url']}`")
    w("")
    w(
        "`HEAD` works like `GET` on the public listener. Anything not listed here is a "
        "`not-found` or `method-not-allowed` problem document."
    )
    w("")

    schemas = spec["components"]["schemas"]
    responses = spec["components"]["responses"]
    w("## Problem types")
    w("")
    w(
        "Errors are RFC 9457 `application/problem+json` documents whose `type` is "
        "`urn:hallmark:problem:KIND`; [problem types and limits](problems.md) says which status "
        "each comes with and what to do. The kinds:"
    )
    w("")
    for kind in kinds(schemas["Problem"]["properties"]["type"]["description"], "urn:hallmark:problem:"):
        w(kind_item(kind))
    w("")
    w(
        "ACME answers (under `/acme/{profile}/`) carry RFC 8555 problem documents instead, whose "
        "`type` is `urn:ietf:params:acme:error:KIND`:"
    )
    w("")
    for kind in kinds(responses["AcmeProblem"]["description"], "urn:ietf:params:acme:error:"):
        w(kind_item(kind))
    w("")

    ops = []
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                ops.append((path, method, item[method]))

    w("## Every route")
    w("")
    w("| Method | Path | Listener | Credential | Summary |")
    w("|---|---|---|---|---|")
    for path, method, op in ops:
        tags = op.get("tags", [])
        where = ", ".join(LISTENERS.get(t, t) for t in tags)
        cred = "token" if op.get("security") else ("JWS" if "acme" in tags else "—")
        if path == "/api/v1/provision/batch":
            cred = "station certificate (mTLS)"
        w(f"| {method.upper()} | `{path}` | {where} | {cred} | {one_line(op.get('summary'))} |")
    w("")

    for tag, title in (("api", "API listener"), ("acme", "ACME"), ("public", "Public listener")):
        w(f"## {title}")
        w("")
        for t in spec.get("tags", []):
            if t["name"] == tag and t.get("description"):
                w(t["description"].strip())
                w("")
        for path, method, op in ops:
            if (op.get("tags") or ["api"])[0] != tag:
                continue
            w(f"### {method.upper()} `{path}`")
            w("")
            w(one_line(op.get("summary")))
            w("")
            if op.get("description"):
                w(op["description"].strip())
                w("")
            cred = credential(op)
            if cred:
                w(f"- Credential: {cred}.")
            params = op.get("parameters", [])
            for p in params:
                _, p = resolve(spec, p)
                schema = p.get("schema", {})
                kind = schema.get("type", "")
                if isinstance(kind, list):
                    kind = "|".join(kind)
                extra = []
                if "enum" in schema:
                    extra.append("one of " + ", ".join(f"`{v}`" for v in schema["enum"]))
                if "default" in schema:
                    extra.append(f"default {schema['default']}")
                if "minimum" in schema or "maximum" in schema:
                    extra.append(f"{schema.get('minimum', '')}–{schema.get('maximum', '')}")
                desc = one_line(p.get("description"))
                tail = "; ".join(x for x in [desc] + extra if x)
                req = ", required" if p.get("required") else ""
                w(f"- Parameter `{p['name']}` ({p['in']}, {kind}{req}){': ' + tail if tail else ''}.")
            body = op.get("requestBody")
            if body:
                types = ", ".join(f"`{c}`" for c in body.get("content", {}))
                w(f"- Body: {types}{' (required)' if body.get('required') else ''}.")
                for ctype, media in body.get("content", {}).items():
                    if "json" not in ctype or "jose" in ctype:
                        continue
                    for name, req, desc in fields(spec, (media or {}).get("schema")):
                        note = ", required" if req else ""
                        w(f"  - `{name}`{note}{': ' + desc if desc else ''}")
            for status, answer in op.get("responses", {}).items():
                name, answer = resolve(spec, answer)
                if name in ("Problem", "AcmeProblem"):
                    text = "problem document" if name == "Problem" else "ACME problem document"
                else:
                    text = one_line(answer.get("description"))
                    content = answer.get("content") or {}
                    types = ", ".join(f"`{c}`" for c in content)
                    if types:
                        text = f"{text} ({types})" if text else types
                    json_body = content.get("application/json") or {}
                    names = [f"`{n}`" for n, _, _ in fields(spec, json_body.get("schema"))]
                    if names:
                        text = f"{text}: {', '.join(names)}"
                w(f"- `{status}`: {text}")
            w("")
    return "\n".join(out).rstrip("\n") + "\n"


def main():
    spec = yaml.safe_load(SPEC.read_text())
    page = render(spec)
    if sys.argv[1:] == ["--stdout"]:
        sys.stdout.write(page)
    elif not sys.argv[1:]:
        PAGE.parent.mkdir(parents=True, exist_ok=True)
        PAGE.write_text(page)
        print(f"wrote {PAGE.relative_to(ROOT)}")
    else:
        sys.exit("usage: scripts/http_reference.py [--stdout]")


if __name__ == "__main__":
    main()
