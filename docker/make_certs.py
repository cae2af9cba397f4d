"""One-shot for docker-compose's ``certs`` service: the stack's own private CA and every certificate
OpenSearch and Dashboards use, written once.

Into ``CERTS`` (the ``certs`` volume, shared with Dashboards and the Airflow services): ``ca.pem`` and
the HTTPS certificate ``server.pem``/``server-key.pem`` for the compose hostnames (opensearch,
dashboards, localhost, 127.0.0.1). Into ``PRIVATE`` (the ``opensearch-security`` volume, which only
OpenSearch mounts): the node certificate for the transport layer (``node.pem``/``node-key.pem``, its
subject :data:`NODE_DN` is ``plugins.security.nodes_dn``) and the admin client certificate for
``securityadmin.sh`` (``admin.pem``/``admin-key.pem``, :data:`ADMIN_DN` is
``plugins.security.authcz.admin_dn``). The CA key is never written.

Usage: ``python make_certs.py CERTS PRIVATE``. Uses ``cryptography`` (in the Airflow image). When every
file is there, nothing changes; when any is missing, all are made anew under a new CA (they must chain to
one CA, and its key is not kept)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NAMES = ["opensearch", "dashboards", "localhost"]
#: Single-RDN subjects: the image passes settings as ``-Ekey=value``, and a list setting given as one
#: string is split at commas, so a DN with a comma would not survive as ``plugins.security.nodes_dn``.
NODE_DN = "CN=opensearch-node"
ADMIN_DN = "CN=opensearch-admin"
VALID_DAYS = 825
PUBLIC_FILES = ("ca.pem", "server.pem", "server-key.pem")
PRIVATE_FILES = ("node.pem", "node-key.pem", "admin.pem", "admin-key.pem")
SERVER_AND_CLIENT = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:  # PKCS#8: what OpenSearch's security plugin reads
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _cn(value: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, value)])


def _ca() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    name = _cn("seednews compose CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    ca: tuple[rsa.RSAPrivateKey, x509.Certificate], cn: str, usages: list[x509.ObjectIdentifier], *, hosts: bool
) -> tuple[bytes, bytes]:
    """(certificate PEM, PKCS#8 key PEM) for ``cn`` signed by ``ca``; with ``hosts``, valid for the
    compose hostnames and 127.0.0.1."""
    ca_key, ca_cert = ca
    key = _key()
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_cn(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if hosts:
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in NAMES]
        sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return _pem(builder.sign(ca_key, hashes.SHA256())), _pem_key(key)


def main(out: Path, private: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    private.mkdir(parents=True, exist_ok=True)
    wanted = [out / n for n in PUBLIC_FILES] + [private / n for n in PRIVATE_FILES]
    if all(p.exists() for p in wanted):
        print(f"certificates already in {out} and {private}")
        return 0
    ca = _ca()
    server, server_key = _leaf(ca, "opensearch", SERVER_AND_CLIENT, hosts=True)
    node, node_key = _leaf(ca, NODE_DN.removeprefix("CN="), SERVER_AND_CLIENT, hosts=True)
    admin, admin_key = _leaf(ca, ADMIN_DN.removeprefix("CN="), [ExtendedKeyUsageOID.CLIENT_AUTH], hosts=False)
    (out / "ca.pem").write_bytes(_pem(ca[1]))
    (out / "server.pem").write_bytes(server)
    (out / "server-key.pem").write_bytes(server_key)
    for p in out.iterdir():  # readable by the OpenSearch and Dashboards users (uid 1000); volume-private
        p.chmod(0o644)
    for name, data in zip(PRIVATE_FILES, (node, node_key, admin, admin_key), strict=True):
        (private / name).write_bytes(data)
        (private / name).chmod(0o600)  # the security set-up hands them to OpenSearch's user
    print(f"wrote {', '.join(PUBLIC_FILES)} to {out} and {', '.join(PRIVATE_FILES)} to {private}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: make_certs.py CERTS_DIR PRIVATE_DIR")
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
