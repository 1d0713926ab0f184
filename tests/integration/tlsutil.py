"""A throw-away PKI for the TLS tests, made with the openssl command line:
a CA, and server certificates it signs (ECDSA P-256 or RSA-2048) with the
names and addresses a test asks for.

    pki = Pki()                                   # a CA in a temp dir
    cert, key = pki.issue("main", ["localhost", "*.example.test"], ips=["127.0.0.1"])
    ctx = pki.client_context()                    # Python ssl, trusting the CA
"""
import os
import shutil
import ssl
import subprocess
import tempfile


def _run(*args, cwd=None):
    subprocess.run(["openssl", *args], check=True, cwd=cwd, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=60)


class Pki:
    def __init__(self, directory=None):
        self.dir = directory or tempfile.mkdtemp(prefix="wh_pki_")
        self.ca = os.path.join(self.dir, "ca.pem")
        self.ca_key = os.path.join(self.dir, "ca.key")
        _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", self.ca_key, "-out", self.ca, "-days", "2", "-subj", "/CN=wharf test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.serial = 1

    def issue(self, name, dns, ips=(), rsa=False, cn=None, san=True):
        """Writes NAME.pem (leaf) and NAME.key; returns their paths."""
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        crt = os.path.join(self.dir, name + ".pem")
        ext = os.path.join(self.dir, name + ".ext")
        if rsa:
            _run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key)
        else:
            _run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
        _run("req", "-new", "-key", key, "-out", csr, "-subj", "/CN=" + (cn or dns[0]))
        alt = ["DNS:" + d for d in dns] + ["IP:" + i for i in ips]
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
            if san and alt:
                f.write("subjectAltName=" + ",".join(alt) + "\n")
        self.serial += 1
        _run("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key, "-set_serial",
             str(self.serial), "-days", "2", "-out", crt, "-extfile", ext)
        return crt, key

    def client_context(self, **kw):
        ctx = ssl.create_default_context(cafile=self.ca)
        for k, v in kw.items():
            setattr(ctx, k, v)
        return ctx

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


_shared = None


def shared_pki():
    """One PKI per test process, with a certificate for localhost/127.0.0.1
    (used when WH_TEST_TLS=1 runs the HTTP tests over TLS)."""
    global _shared
    if _shared is None:
        _shared = Pki()
        _shared.server = _shared.issue("server", ["localhost"], ips=["127.0.0.1", "::1"])
        import atexit
        atexit.register(_shared.cleanup)
    return _shared


def tls_mode():
    """True when the HTTP tests should run over TLS (WH_TEST_TLS=1)."""
    return os.environ.get("WH_TEST_TLS") == "1"
