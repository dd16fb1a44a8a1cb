"""Decodes hallmark's outputs with pyca/cryptography, whose parser (rust-asn1) is strict DER:
definite lengths, minimal encodings, and every SET OF in ascending order of its elements'
encodings (X.690 §11.6). A fallback to BER is made an error (warnings are errors).

Usage: check.py KIND FILE ...   KIND: cert, crl, ocsp, pkcs7 (CMS SignedData, time-stamp tokens).
Prints one line per file; exits non-zero on the first one that is not DER.
"""

import sys
import warnings

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509 import ocsp

warnings.simplefilter("error")

LOADERS = {
    "cert": x509.load_der_x509_certificate,
    "crl": x509.load_der_x509_crl,
    "ocsp": ocsp.load_der_ocsp_response,
    "pkcs7": pkcs7.load_der_pkcs7_certificates,
}

kind, files = sys.argv[1], sys.argv[2:]
for name in files:
    with open(name, "rb") as f:
        data = f.read()
    try:
        LOADERS[kind](data)
    except Exception as e:  # noqa: BLE001 - any refusal is the finding
        print(f"NOT DER: {kind} {name}: {e}")
        sys.exit(1)
    print(f"DER: {kind} {name}")
