"""Test certificates and C2PA signing: a throwaway root CA and a claim-signing certificate under it,
generated fresh for the test session with the cryptography package."""

from __future__ import annotations

import datetime
import io
import json
from dataclasses import dataclass

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Takedown Test Generator"),
        ]
    )


def _usage(*, signing: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not signing,
        crl_sign=not signing,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class ManifestSigner:
    root_pem: str
    chain_pem: str
    key_pem: str
    common_name: str

    def sign(self, image: bytes, mime: str, actions: list[dict[str, str]] | None) -> bytes:
        manifest: dict[str, object] = {
            "claim_generator_info": [{"name": "takedown-test-generator", "version": "1.0"}],
            "title": "test image",
            "assertions": [],
        }
        if actions is not None:
            manifest["assertions"] = [{"label": "c2pa.actions", "data": {"actions": actions}}]
        signer = c2pa.Signer.from_info(
            c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, self.chain_pem.encode(), self.key_pem.encode(), None)
        )
        out = io.BytesIO()
        with c2pa.Builder(json.dumps(manifest)) as builder:
            builder.sign(signer, mime, io.BytesIO(image), out)
        return out.getvalue()


def make_signer(common_name: str = "Test Generator Signer") -> ManifestSigner:
    now = datetime.datetime.now(datetime.UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = (
        x509.CertificateBuilder()
        .subject_name(_name("Takedown Test Root"))
        .issuer_name(_name("Takedown Test Root"))
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_usage(signing=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(signing=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )

    def pem(certificate: x509.Certificate) -> str:
        return certificate.public_bytes(serialization.Encoding.PEM).decode()

    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return ManifestSigner(pem(root), pem(leaf) + pem(root), key_pem, common_name)
