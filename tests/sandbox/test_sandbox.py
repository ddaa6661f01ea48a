"""test_sandbox.py - the soko-sandbox suite: every provider flow (success
and failure), token expiry, every fault kind, the ledger report, bounds
and bad requests, over real sockets.

    python3 tests/sandbox/test_sandbox.py --build build [--only WORDS]

Python 3 standard library only.  The sandbox starts on port 0 and prints
its readiness line; callbacks land in a local HTTP(S) receiver and every
wait on them has a timeout (nothing sleeps blindly; the only sleep is the
one that lets a 2-second token expire).  Ends with
"sandbox: N passed, N failed".
"""
import argparse
import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import queue
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

SAN_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
               "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer")

SHORTCODE = "174379"
PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
MPESA_KEY = "CdmNbdt0iBN1oqDfKasm4dabdpKmtaNn"
MPESA_SECRET = "DLKG7PBun720GZim"
INITIATOR = "testapi"
INITIATOR_PW = "Safaricom999!*!"
MOMO_USER = "f4d5b7a0-5c1e-4b8e-9d3a-2b6c8e1f0a91"
MOMO_APIKEY = "1e89774dabd944b4b112c30aaef5b9c8"
MOMO_COLL = "a3c9e1f2b4d64e7f8a9b0c1d2e3f4a5b"
MOMO_DISB = "b4d0f2a3c5e74f80a9b1c2d3e4f5a6b7"
ORANGE_ID = "soko-orange-client"
ORANGE_SECRET = "soko-orange-secret"
FLW_SECRET = "FLWSECK_TEST-sokosandbox0000000000000000000-X"
FLW_HASH = "soko-flw-secret-hash"
PAYSTACK_SECRET = "sk_test_simulator"

WORKDIRS = []


# ------------------------------------------------------------ receiver

class Receiver:
    """A local HTTP (or HTTPS) server that records every callback."""

    def __init__(self, tls_dir=None):
        self.q = queue.Queue()
        self.responses = {}  # path -> (status, body)
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                st, rb = rec.responses.get(
                    self.path, (200, b'{"ResultCode":0,"ResultDesc":"Accepted"}'))
                # recorded before answering: once the sandbox has our
                # answer, the test can already see the callback
                rec.q.put({"path": self.path, "method": self.command,
                           "headers": {k.lower(): v for k, v in
                                       self.headers.items()},
                           "raw": body, "t": time.monotonic()})
                try:
                    self.send_response(st)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(rb)))
                    self.end_headers()
                    self.wfile.write(rb)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sandbox gave up (timeout, shutdown)

            do_POST = _any
            do_PUT = _any

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.scheme = "http"
        if tls_dir is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(os.path.join(tls_dir, "server.pem"),
                                os.path.join(tls_dir, "server.key"))
            self.srv.socket = ctx.wrap_socket(self.srv.socket,
                                              server_side=True)
            self.scheme = "https"
        self.port = self.srv.server_address[1]
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def url(self, path):
        return "%s://127.0.0.1:%d%s" % (self.scheme, self.port, path)

    def get(self, timeout=5.0):
        try:
            m = self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no callback within %.1f s" % timeout)
        m["json"] = json.loads(m["raw"]) if m["raw"] else None
        return m

    def none(self, timeout):
        """Asserts no callback arrives within timeout seconds."""
        try:
            m = self.q.get(timeout=timeout)
        except queue.Empty:
            return
        raise AssertionError("unexpected callback %s %r" % (m["path"],
                                                            m["raw"][:200]))

    def drain(self):
        while not self.q.empty():
            self.q.get_nowait()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


# ------------------------------------------------------------ sandbox

class Sandbox:
    def __init__(self, build, extra=(), tls_dir=None):
        self.dir = tempfile.mkdtemp(prefix="soko-sb-")
        WORKDIRS.append(self.dir)
        self.tls = tls_dir or os.path.join(self.dir, "tls")
        self.binary = os.path.join(build, "soko-sandbox")
        self.extra = list(extra)
        self.stderr_path = os.path.join(self.dir, "sandbox.stderr")
        self.proc = None

    def start(self, timeout=20):
        self.stderr_f = open(self.stderr_path, "ab")
        cmd = [self.binary, "--listen", "127.0.0.1:0", "--ctl",
               "127.0.0.1:0", "--tls-dir", self.tls] + self.extra
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                     stderr=self.stderr_f)
        line = [None]

        def reader():
            line[0] = self.proc.stdout.readline().decode()

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        t.join(timeout)
        if not line[0] or not line[0].startswith("soko-sandbox ready "):
            self.proc.kill()
            raise AssertionError("no ready line: %r; stderr: %s" %
                                 (line[0], self.stderr()))
        kv = dict(p.split("=", 1) for p in line[0].split()[2:])
        self.https_port = int(kv["https"].rsplit(":", 1)[1])
        self.ctl_port = int(kv["ctl"].rsplit(":", 1)[1])
        assert int(kv["pid"]) == self.proc.pid
        self.ctx = ssl.create_default_context(
            cafile=os.path.join(self.tls, "ca.pem"))
        self.conn = None
        return self

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, timeout=20):
        if self.conn:
            self.conn.close()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self.stderr_f.close()
        err = self.stderr()
        for m in SAN_MARKERS:
            assert m not in err, "sanitizer: %s" % err[-4000:]
        assert rc == 0, "exit status %d: %s" % (rc, err[-2000:])

    # -- HTTPS API (keep-alive connection, reopened when closed)
    def req(self, method, path, body=None, headers=None, timeout=10,
            raw=None):
        h = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(
                    "127.0.0.1", self.https_port, context=self.ctx,
                    timeout=timeout)
            try:
                self.conn.request(method, path, body=data, headers=h)
                r = self.conn.getresponse()
                b = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                break
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        try:
            j = json.loads(b) if b else None
        except ValueError:
            j = None
        return r.status, j, b, r

    def fresh(self, method, path, body=None, headers=None, timeout=10):
        """One request on a new connection (for faults that break it)."""
        c = http.client.HTTPSConnection("127.0.0.1", self.https_port,
                                        context=self.ctx, timeout=timeout)
        h = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            b = r.read()
            return r.status, (json.loads(b) if b else None)
        finally:
            c.close()

    # -- control API
    def ctl(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.ctl_port,
                                       timeout=30)
        c.request(method, path, body=json.dumps(body) if body is not None
                  else None)
        r = c.getresponse()
        b = r.read()
        c.close()
        return r.status, json.loads(b) if b else None

    def faults(self, *rules):
        st, j = self.ctl("POST", "/faults", {"rules": list(rules)})
        assert st == 200, j

    def ledger(self, **q):
        qs = "&".join("%s=%s" % kv for kv in q.items())
        st, j = self.ctl("GET", "/ledger" + ("?" + qs if qs else ""))
        assert st == 200
        return j

    def charge(self, ref):
        for c in self.ledger()["charges"]:
            if c["provider_ref"] == ref:
                return c
        raise AssertionError("no charge %s in the ledger" % ref)

    def wait_state(self, ref, state, timeout=5):
        """Polls the ledger until ref reaches state (bounded)."""
        end = time.monotonic() + timeout
        while True:
            c = self.charge(ref)
            if c["state"] == state:
                return c
            if time.monotonic() > end:
                raise AssertionError("%s stays %s" % (ref, c["state"]))
            time.sleep(0.02)


# ------------------------------------------------------------ providers

def basic(u, p):
    return "Basic " + base64.b64encode(("%s:%s" % (u, p)).encode()).decode()


def mpesa_token(sb):
    st, j, _, _ = sb.req("GET", "/oauth/v1/generate?grant_type="
                         "client_credentials",
                         headers={"Authorization": basic(MPESA_KEY,
                                                         MPESA_SECRET)})
    assert st == 200, j
    return j["access_token"]


def stk_password(ts, shortcode=SHORTCODE, passkey=PASSKEY):
    return base64.b64encode((shortcode + passkey + ts).encode()).decode()


def eat_now():
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() + 10800))


def stk_body(cb, phone="254708374149", amount="1", aref="INV001"):
    ts = eat_now()
    return {"BusinessShortCode": 174379, "Password": stk_password(ts),
            "Timestamp": ts, "TransactionType": "CustomerPayBillOnline",
            "Amount": amount, "PartyA": phone, "PartyB": SHORTCODE,
            "PhoneNumber": phone, "CallBackURL": cb,
            "AccountReference": aref, "TransactionDesc": "txndesc"}


def stk_push(sb, tok, cb, **kw):
    return sb.req("POST", "/mpesa/stkpush/v1/processrequest",
                  stk_body(cb, **kw),
                  headers={"Authorization": "Bearer " + tok})


def stk_query(sb, tok, checkout):
    ts = eat_now()
    return sb.req("POST", "/mpesa/stkpushquery/v1/query",
                  {"BusinessShortCode": SHORTCODE,
                   "Password": stk_password(ts), "Timestamp": ts,
                   "CheckoutRequestID": checkout},
                  headers={"Authorization": "Bearer " + tok})


def der(b, i):
    tag = b[i]
    n = b[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7f
        n = int.from_bytes(b[i:i + k], "big")
        i += k
    return tag, i, i + n


def der_children(b, start, end):
    out = []
    while start < end:
        t, s, e = der(b, start)
        out.append((t, s, e))
        start = e
    return out


def security_credential(tls_dir, password):
    """RSA PKCS#1 v1.5 encryption of password with mpesa_cert.pem, in pure
    Python (the stdlib has no RSA): parse the certificate's public key,
    pad, exponentiate, base64 (wire-formats.md §1.5)."""
    with open(os.path.join(tls_dir, "mpesa_cert.pem")) as f:
        d = ssl.PEM_cert_to_DER_cert(f.read())
    _, s, e = der(d, 0)
    _, ts, te = der(d, s)  # tbsCertificate
    kids = der_children(d, ts, te)
    if kids[0][0] == 0xa0:
        kids = kids[1:]
    _, ks, ke = kids[5]  # subjectPublicKeyInfo
    _, bs, be = der_children(d, ks, ke)[1]  # BIT STRING
    rsa = d[bs + 1:be]
    (_, ns, ne), (_, es, ee) = der_children(rsa, der(rsa, 0)[1], len(rsa))
    n = int.from_bytes(rsa[ns:ne], "big")
    ex = int.from_bytes(rsa[es:ee], "big")
    k = (n.bit_length() + 7) // 8
    m = password.encode()
    ps = b""
    while len(ps) < k - 3 - len(m):
        ps += bytes(x for x in os.urandom(k) if x != 0)
    em = b"\x00\x02" + ps[:k - 3 - len(m)] + b"\x00" + m
    c = pow(int.from_bytes(em, "big"), ex, n)
    return base64.b64encode(c.to_bytes(k, "big")).decode()


def momo_token(sb, product="collection"):
    key = MOMO_COLL if product == "collection" else MOMO_DISB
    st, j, _, _ = sb.req("POST", "/%s/token/" % product,
                         headers={"Authorization": basic(MOMO_USER,
                                                         MOMO_APIKEY),
                                  "Ocp-Apim-Subscription-Key": key})
    assert st == 200, j
    return j["access_token"]


def momo_headers(tok, ref=None, cb=None, key=MOMO_COLL):
    h = {"Authorization": "Bearer " + tok, "X-Target-Environment": "sandbox",
         "Ocp-Apim-Subscription-Key": key}
    if ref:
        h["X-Reference-Id"] = ref
    if cb:
        h["X-Callback-Url"] = cb
    return h


def rtp_body(msisdn="46733123459", amount="100"):
    return {"amount": amount, "currency": "EUR", "externalId": "6253728",
            "payer": {"partyIdType": "MSISDN", "partyId": msisdn},
            "payerMessage": "Paying for product a", "payeeNote": "Payer note"}


def rtp(sb, tok, cb=None, msisdn="46733123459", ref=None):
    ref = ref or str(uuid.uuid4())
    st, j, _, _ = sb.req("POST", "/collection/v1_0/requesttopay",
                         rtp_body(msisdn), headers=momo_headers(tok, ref, cb))
    return ref, st, j


def orange_token(sb):
    st, j, _, _ = sb.req("POST", "/oauth/v3/token",
                         raw=b"grant_type=client_credentials",
                         headers={"Authorization": basic(ORANGE_ID,
                                                         ORANGE_SECRET),
                                  "Content-Type":
                                  "application/x-www-form-urlencoded"})
    assert st == 200, j
    return j["access_token"]


FLW_AUTH = {"Authorization": "Bearer " + FLW_SECRET}
PS_AUTH = {"Authorization": "Bearer " + PAYSTACK_SECRET}


# ------------------------------------------------------------ tests

def test_tls_files(sb, rx):
    for f in ("ca.pem", "server.pem", "server.key", "mpesa_cert.pem",
              "mpesa_key.pem"):
        assert os.path.exists(os.path.join(sb.tls, f)), f
    for f in ("server.key", "mpesa_key.pem"):
        mode = os.stat(os.path.join(sb.tls, f)).st_mode & 0o777
        assert mode == 0o600, (f, oct(mode))
    # verified TLS by IP and by name (SAN 127.0.0.1 and localhost)
    c = http.client.HTTPSConnection("localhost", sb.https_port,
                                    context=sb.ctx, timeout=5)
    c.request("GET", "/nowhere")
    r = c.getresponse()
    r.read()
    assert r.status == 404
    c.close()


def test_mpesa_oauth(sb, rx):
    st, j, _, _ = sb.req("GET", "/oauth/v1/generate?grant_type="
                         "client_credentials",
                         headers={"Authorization": basic(MPESA_KEY,
                                                         MPESA_SECRET)})
    assert st == 200 and j["expires_in"] == 3599 and j["access_token"]
    st, j, _, _ = sb.req("GET", "/oauth/v1/generate?grant_type="
                         "client_credentials",
                         headers={"Authorization": basic(MPESA_KEY, "no")})
    assert st == 400 and j["errorCode"] == "400.008.01", j
    st, j, _, _ = sb.req("GET", "/oauth/v1/generate?grant_type=password",
                         headers={"Authorization": basic(MPESA_KEY,
                                                         MPESA_SECRET)})
    assert st == 400 and j["errorCode"] == "400.008.02", j
    st, j, _, _ = sb.req("GET", "/oauth/v1/generate?grant_type="
                         "client_credentials")
    assert st == 400 and j["errorCode"] == "400.008.01", j
    assert set(j) == {"requestId", "errorCode", "errorMessage"}


def test_mpesa_stk_success(sb, rx):
    tok = mpesa_token(sb)
    st, j, _, _ = stk_push(sb, tok, rx.url("/stk"), amount="10")
    assert st == 200 and j["ResponseCode"] == "0", j
    assert j["CheckoutRequestID"].startswith("ws_CO_")
    co = j["CheckoutRequestID"]
    st, q, _, _ = stk_query(sb, tok, co)
    if sb.charge(co)["state"] == "pending":
        assert st == 500 and q["errorCode"] == "500.001.1001", q
        assert q["errorMessage"] == "The transaction is being processed"
    m = rx.get()
    cb = m["json"]["Body"]["stkCallback"]
    assert m["path"] == "/stk" and m["method"] == "POST"
    assert cb["ResultCode"] == 0 and cb["CheckoutRequestID"] == co
    assert cb["MerchantRequestID"] == j["MerchantRequestID"]
    items = {i["Name"]: i.get("Value") for i in
             cb["CallbackMetadata"]["Item"]}
    assert items["Amount"] == 10 and isinstance(items["PhoneNumber"], int)
    assert len(str(items["TransactionDate"])) == 14
    assert len(items["MpesaReceiptNumber"]) == 10
    st, q, _, _ = stk_query(sb, tok, co)
    assert st == 200 and q["ResultCode"] == "0", q
    c = sb.charge(co)
    assert c["state"] == "succeeded" and c["callbacks_sent"] == 1
    assert c["client_ref"] == "INV001" and c["amount"] == "10"
    assert c["op"] == "stkpush" and c["currency"] == "KES"


def test_mpesa_stk_failures(sb, rx):
    tok = mpesa_token(sb)
    for phone, code in (("254700001032", 1032), ("254700000001", 1),
                        ("254700001037", 1037), ("254700002001", 2001),
                        ("254700999003", "SFC_IC0003")):
        st, j, _, _ = stk_push(sb, tok, rx.url("/stk"), phone=phone)
        assert st == 200, j
        cb = rx.get()["json"]["Body"]["stkCallback"]
        assert cb["ResultCode"] == code, (phone, cb)
        assert "CallbackMetadata" not in cb
        st, q, _, _ = stk_query(sb, tok, j["CheckoutRequestID"])
        assert st == 200 and q["ResultCode"] == str(code), q
        assert sb.charge(j["CheckoutRequestID"])["state"] == "failed"
    # above the per-transaction limit: ResultCode 3
    stk_push(sb, tok, rx.url("/stk"), amount="250001")
    assert rx.get()["json"]["Body"]["stkCallback"]["ResultCode"] == 3
    # never completes: always "being processed", no callback
    st, j, _, _ = stk_push(sb, tok, rx.url("/stk"), phone="254700999999")
    rx.none(0.5)
    st, q, _, _ = stk_query(sb, tok, j["CheckoutRequestID"])
    assert st == 500 and q["errorCode"] == "500.001.1001"


def test_mpesa_stk_bad_requests(sb, rx):
    tok = mpesa_token(sb)
    auth = {"Authorization": "Bearer " + tok}
    path = "/mpesa/stkpush/v1/processrequest"
    b = stk_body(rx.url("/stk"))
    b["Password"] = stk_password(b["Timestamp"], passkey="0" * 64)
    st, j, _, _ = sb.req("POST", path, b, headers=auth)
    assert st == 500 and j["errorCode"] == "500.001.1001" and \
        j["errorMessage"] == "Wrong credentials", j
    b = stk_body(rx.url("/stk"))
    b["Timestamp"] = "20211328092408"  # month 13; password of another ts
    st, j, _, _ = sb.req("POST", path, b, headers=auth)
    assert st == 400 and j["errorMessage"] == \
        "Bad Request - Invalid Timestamp", j
    b = stk_body(rx.url("/stk"))
    b["Timestamp"] = "20210628092408"  # valid, but not the password's
    st, j, _, _ = sb.req("POST", path, b, headers=auth)
    assert st == 500 and j["errorMessage"] == "Wrong credentials", j
    for field, value in (("AccountReference", "1234567890123"),
                         ("Amount", "0"), ("Amount", "1.5"),
                         ("TransactionDesc", "x" * 14),
                         ("PhoneNumber", "0722000000"),
                         ("CallBackURL", "ftp://x/y"),
                         ("TransactionType", "Bogus")):
        b = stk_body(rx.url("/stk"))
        b[field] = value
        st, j, _, _ = sb.req("POST", path, b, headers=auth)
        assert st == 400 and j["errorCode"] == "400.002.02" and \
            j["errorMessage"] == "Bad Request - Invalid " + field, (field, j)
    b = stk_body(rx.url("/stk"))
    del b["PartyA"]
    st, j, _, _ = sb.req("POST", path, b, headers=auth)
    assert st == 400 and j["errorMessage"].endswith("PartyA"), j
    b = stk_body(rx.url("/stk"))
    b["BusinessShortCode"] = "600000"
    st, j, _, _ = sb.req("POST", path, b, headers=auth)
    assert st == 500 and j["errorMessage"] == "Merchant does not exist", j
    st, j, _, _ = sb.req("POST", path, raw=b'{"BusinessShortCode":',
                         headers=dict(auth, **{"Content-Type":
                                               "application/json"}))
    assert st == 400 and j["errorCode"] == "400.002.05", j
    st, j, _, _ = sb.req("POST", path, raw=json.dumps(stk_body("x")).encode(),
                         headers=dict(auth, **{"Content-Type": "text/plain"}))
    assert st == 400 and j["errorMessage"] == \
        "Bad Request - Invalid BusinessShortCode", j
    st, j, _, _ = sb.req("POST", path, stk_body(rx.url("/stk")))
    assert st == 404 and j["errorCode"] == "404.001.04", j
    st, j, _, _ = sb.req("POST", path, stk_body(rx.url("/stk")),
                         headers={"Authorization": "Bearer nonsense"})
    assert st == 404 and j["errorCode"] == "404.001.03", j
    st, j, _, _ = sb.req("GET", path, headers=auth)
    assert st == 405 and j["errorCode"] == "405.001", j
    st, j, _, _ = sb.req("POST", "/mpesa/nothing/v1/here", {}, headers=auth)
    assert st == 404 and j["errorCode"] == "404.001.01", j
    st, j, _, _ = stk_query(sb, tok, "ws_CO_unknown")
    assert st == 400 and j["errorMessage"].endswith("CheckoutRequestID"), j
    assert sb.ledger()["count"] == 0


def test_token_expiry(sb, rx):
    tok = mpesa_token(sb)
    mt = momo_token(sb)
    st, j, _, _ = stk_push(sb, tok, rx.url("/stk"))
    assert st == 200
    rx.get()
    st, j = sb.ctl("POST", "/tokens/expire")
    assert st == 200
    st, j, _, _ = stk_push(sb, tok, rx.url("/stk"))
    assert st == 404 and j["errorCode"] == "404.001.03", j
    st, j, _, _ = sb.req("POST", "/mpesa/c2b/v1/registerurl",
                         {"ShortCode": "600984", "ResponseType": "Completed",
                          "ConfirmationURL": rx.url("/c"),
                          "ValidationURL": rx.url("/v")},
                         headers={"Authorization": "Bearer " + tok})
    assert st == 400 and j["errorCode"] == "400.003.01", j
    _, st, j = rtp(sb, mt)
    assert st == 401 and j["message"] == "Access token expired.", j
    tok = mpesa_token(sb)  # a new one works
    st, j, _, _ = stk_push(sb, tok, rx.url("/stk"))
    assert st == 200
    rx.get()


def test_token_ttl(build, rx):
    sb = Sandbox(build, ["--token-ttl-s", "2", "--callback-delay-ms",
                         "50"]).start()
    try:
        tok = mpesa_token(sb)
        st, j, _, _ = sb.req("GET", "/oauth/v1/generate?grant_type="
                             "client_credentials",
                             headers={"Authorization": basic(MPESA_KEY,
                                                             MPESA_SECRET)})
        assert j["expires_in"] == 2
        mt = momo_token(sb)
        st, j, _, _ = stk_push(sb, tok, rx.url("/stk"))
        assert st == 200
        rx.get()
        time.sleep(3.2)  # let the 2-second tokens expire
        st, j, _, _ = stk_push(sb, tok, rx.url("/stk"))
        assert st == 404 and j["errorMessage"] == "Invalid Access Token", j
        _, st, j = rtp(sb, mt)
        assert st == 401 and j["message"] == "Access token expired.", j
    finally:
        sb.stop()


def register_c2b(sb, tok, rx, version=2, shortcode="600984",
                 rtype="Completed"):
    return sb.req("POST", "/mpesa/c2b/v%d/registerurl" % version,
                  {"ShortCode": shortcode, "ResponseType": rtype,
                   "ConfirmationURL": rx.url("/c2b/confirm"),
                   "ValidationURL": rx.url("/c2b/validate")},
                  headers={"Authorization": "Bearer " + tok})


def test_mpesa_c2b(sb, rx):
    tok = mpesa_token(sb)
    st, j, _, _ = register_c2b(sb, tok, rx)
    assert st == 200 and j["ResponseCode"] == "0" and \
        "OriginatorCoversationID" in j, j
    st, j, _, _ = sb.req("POST", "/mpesa/c2b/v2/registerurl",
                         {"ShortCode": "600984", "ResponseType": "Completed",
                          "ConfirmationURL": rx.url("/query/confirm"),
                          "ValidationURL": rx.url("/v")},
                         headers={"Authorization": "Bearer " + tok})
    assert st == 400 and j["errorMessage"].endswith("ConfirmationURL"), j
    st, j, _, _ = sb.req("POST", "/mpesa/c2b/v2/registerurl",
                         {"ShortCode": "600984", "ResponseType": "completed",
                          "ConfirmationURL": rx.url("/c"),
                          "ValidationURL": rx.url("/v")},
                         headers={"Authorization": "Bearer " + tok})
    assert st == 400 and j["errorMessage"].endswith("ResponseType"), j
    # accepted: validation, then confirmation, then the ctl answer
    st, r = sb.ctl("POST", "/c2b/pay", {"shortcode": "600984",
                                        "msisdn": "254708374126",
                                        "amount": "5", "bill_ref": "ACC-7"})
    assert st == 200 and r["result"] == "completed", r
    v = rx.get()["json"]
    c = rx.get()["json"]
    assert v["OrgAccountBalance"] == "" and v["TransAmount"] == "5.00"
    assert v["MSISDN"] == "2547 ***** 126" and v["TransactionType"] == \
        "Pay Bill"
    assert c["TransID"] == v["TransID"] == r["TransID"]
    assert c["OrgAccountBalance"] == "5.00" and c["BillRefNumber"] == "ACC-7"
    assert all(isinstance(x, str) for x in c.values())
    ch = sb.charge(r["TransID"])
    assert ch["state"] == "succeeded" and ch["op"] == "c2b"
    # rejected by the validation URL
    rx.responses["/c2b/validate"] = (200, b'{"ResultCode":"C2B00012",'
                                     b'"ResultDesc":"Rejected"}')
    st, r = sb.ctl("POST", "/c2b/pay", {"shortcode": "600984",
                                        "msisdn": "254708374126",
                                        "amount": 7, "bill_ref": "BAD"})
    assert r["result"] == "rejected" and \
        r["validation"]["ResultCode"] == "C2B00012", r
    rx.get()
    rx.none(0.3)  # no confirmation
    assert sb.charge(r["TransID"])["state"] == "failed"
    # validation URL down: ResponseType Cancelled rejects
    del rx.responses["/c2b/validate"]
    rx.responses["/c2b/validate"] = (500, b"oops")
    register_c2b(sb, tok, rx, version=1, shortcode="600985",
                 rtype="Cancelled")
    st, r = sb.ctl("POST", "/c2b/pay", {"shortcode": "600985",
                                        "msisdn": "254708374149",
                                        "amount": "1", "bill_ref": "X"})
    assert r["result"] == "rejected" and \
        r["validation"]["ResultCode"] == "default:Cancelled", r
    v = rx.get()["json"]
    assert v["MSISDN"] == hashlib.sha256(b"254708374149").hexdigest()
    del rx.responses["/c2b/validate"]
    # the v2 simulate API starts the same flow
    st, j, _, _ = sb.req("POST", "/mpesa/c2b/v2/simulate",
                         {"ShortCode": 600984,
                          "CommandID": "CustomerPayBillOnline", "Amount": 1,
                          "Msisdn": 254708374149, "BillRefNumber": "Sim"},
                         headers={"Authorization": "Bearer " + tok})
    assert st == 200 and j["ResponseCode"] == "0", j
    assert rx.get()["path"] == "/c2b/validate"
    assert rx.get()["json"]["BillRefNumber"] == "Sim"
    st, r = sb.ctl("POST", "/c2b/pay", {"shortcode": "999999",
                                        "msisdn": "254708374149",
                                        "amount": "1", "bill_ref": "X"})
    assert st == 404, r
    st, r = sb.ctl("POST", "/c2b/pay", {"shortcode": "600984"})
    assert st == 400, r


def b2c_body(sb, rx, ocid=None, password=INITIATOR_PW, party_b="254705912645",
             amount="100", remarks="salary"):
    return {"OriginatorConversationID": ocid or str(uuid.uuid4())[:20],
            "InitiatorName": INITIATOR,
            "SecurityCredential": security_credential(sb.tls, password),
            "CommandID": "BusinessPayment", "Amount": amount,
            "PartyA": "600992", "PartyB": party_b, "Remarks": remarks,
            "QueueTimeOutURL": rx.url("/b2c/timeout"),
            "ResultURL": rx.url("/b2c/result"), "Occassion": "x"}


def test_mpesa_b2c(sb, rx):
    tok = mpesa_token(sb)
    auth = {"Authorization": "Bearer " + tok}
    path = "/mpesa/b2c/v3/paymentrequest"
    body = b2c_body(sb, rx)
    st, j, _, _ = sb.req("POST", path, body, headers=auth)
    assert st == 200 and j["ResponseCode"] == "0" and \
        j["OriginatorConversationID"] == body["OriginatorConversationID"], j
    assert j["ConversationID"].startswith("AG_")
    r = rx.get()["json"]["Result"]
    assert r["ResultCode"] == 0 and r["ConversationID"] == j["ConversationID"]
    params = {p["Key"]: p["Value"] for p in
              r["ResultParameters"]["ResultParameter"]}
    assert params["TransactionAmount"] == 100
    assert params["TransactionReceipt"] == r["TransactionID"]
    assert sb.charge(j["ConversationID"])["state"] == "succeeded"
    # duplicate OriginatorConversationID
    st, j2, _, _ = sb.req("POST", path, body, headers=auth)
    assert st == 500 and j2["errorCode"] == "500.002.1001", j2
    # wrong initiator password: accepted, then ResultCode 2001
    st, j, _, _ = sb.req("POST", path, b2c_body(sb, rx, password="wrong"),
                         headers=auth)
    assert st == 200
    r = rx.get()["json"]["Result"]
    assert r["ResultCode"] == 2001 and "ResultParameters" not in r, r
    assert sb.charge(j["ConversationID"])["state"] == "failed"
    # garbage credential: same
    b = b2c_body(sb, rx)
    b["SecurityCredential"] = base64.b64encode(b"x" * 256).decode()
    st, j, _, _ = sb.req("POST", path, b, headers=auth)
    assert rx.get()["json"]["Result"]["ResultCode"] == 2001
    # magic PartyB and minimum amount
    st, j, _, _ = sb.req("POST", path, b2c_body(sb, rx,
                                                party_b="254700000001"),
                         headers=auth)
    assert rx.get()["json"]["Result"]["ResultCode"] == 1
    st, j, _, _ = sb.req("POST", path, b2c_body(sb, rx, amount="5"),
                         headers=auth)
    assert rx.get()["json"]["Result"]["ResultCode"] == 2
    # validation
    st, j, _, _ = sb.req("POST", path, b2c_body(sb, rx, remarks="x"),
                         headers=auth)
    assert st == 400 and j["errorMessage"].endswith("Remarks"), j
    b = b2c_body(sb, rx)
    b["CommandID"] = "Bogus"
    st, j, _, _ = sb.req("POST", path, b, headers=auth)
    assert st == 400 and j["errorMessage"].endswith("CommandID"), j
    # v1 shape: no OriginatorConversationID, "Occasion"
    b = b2c_body(sb, rx)
    del b["OriginatorConversationID"]
    b["Occasion"] = b.pop("Occassion")
    st, j, _, _ = sb.req("POST", "/mpesa/b2c/v1/paymentrequest", b,
                         headers=auth)
    assert st == 200 and j["OriginatorConversationID"], j
    assert rx.get()["json"]["Result"]["ResultCode"] == 0


def test_mpesa_status_reversal(sb, rx):
    tok = mpesa_token(sb)
    auth = {"Authorization": "Bearer " + tok}
    st, j, _, _ = stk_push(sb, tok, rx.url("/stk"), amount="20")
    cb = rx.get()["json"]["Body"]["stkCallback"]
    rcpt = {i["Name"]: i.get("Value") for i in
            cb["CallbackMetadata"]["Item"]}["MpesaReceiptNumber"]
    cred = security_credential(sb.tls, INITIATOR_PW)
    status_body = {"Initiator": INITIATOR, "SecurityCredential": cred,
                   "CommandID": "TransactionStatusQuery",
                   "TransactionID": rcpt, "PartyA": SHORTCODE,
                   "IdentifierType": "4", "ResultURL": rx.url("/ts"),
                   "QueueTimeOutURL": rx.url("/ts/to"), "Remarks": "OK",
                   "Occasion": "OK"}
    st, a, _, _ = sb.req("POST", "/mpesa/transactionstatus/v1/query",
                         status_body, headers=auth)
    assert st == 200 and a["ResponseCode"] == "0", a
    r = rx.get()["json"]["Result"]
    params = {p["Key"]: p.get("Value") for p in
              r["ResultParameters"]["ResultParameter"]}
    assert r["ResultCode"] == 0 and params["ReceiptNo"] == rcpt
    assert params["TransactionStatus"] == "Completed"
    assert params["Amount"] == 20
    rev = {"Initiator": INITIATOR, "SecurityCredential": cred,
           "CommandID": "TransactionReversal", "TransactionID": rcpt,
           "Amount": "20", "ReceiverParty": SHORTCODE,
           "RecieverIdentifierType": "11", "ResultURL": rx.url("/rev"),
           "QueueTimeOutURL": rx.url("/rev/to"), "Remarks": "refund",
           "Occasion": ""}
    st, a, _, _ = sb.req("POST", "/mpesa/reversal/v1/request", rev,
                         headers=auth)
    assert st == 200 and a["ResponseCode"] == "0", a
    r = rx.get()["json"]["Result"]
    assert r["ResultCode"] == 0, r
    assert sb.charge(j["CheckoutRequestID"])["state"] == "reversed"
    st, a, _, _ = sb.req("POST", "/mpesa/reversal/v1/request", rev,
                         headers=auth)
    assert rx.get()["json"]["Result"]["ResultCode"] == "R000003"
    rev2 = dict(rev, TransactionID="NOSUCHRCPT")
    sb.req("POST", "/mpesa/reversal/v1/request", rev2, headers=auth)
    assert rx.get()["json"]["Result"]["ResultCode"] == "R000002"
    sb.req("POST", "/mpesa/transactionstatus/v1/query", status_body,
           headers=auth)
    r = rx.get()["json"]["Result"]
    params = {p["Key"]: p.get("Value") for p in
              r["ResultParameters"]["ResultParameter"]}
    assert params["TransactionStatus"] == "Reversed"
    sb.req("POST", "/mpesa/transactionstatus/v1/query",
           dict(status_body, TransactionID="NOSUCHRCPT"), headers=auth)
    assert rx.get()["json"]["Result"]["ResultCode"] == "R000001"
    sb.req("POST", "/mpesa/transactionstatus/v1/query",
           dict(status_body,
                SecurityCredential=security_credential(sb.tls, "nope")),
           headers=auth)
    assert rx.get()["json"]["Result"]["ResultCode"] == 2001


def test_momo_collection(sb, rx):
    st, j, _, _ = sb.req("POST", "/collection/token/",
                         headers={"Authorization": basic(MOMO_USER,
                                                         MOMO_APIKEY),
                                  "Ocp-Apim-Subscription-Key": "wrong"})
    assert st == 401 and j["statusCode"] == 401, j
    st, j, _, _ = sb.req("POST", "/collection/token/",
                         headers={"Authorization": basic(MOMO_USER, "x"),
                                  "Ocp-Apim-Subscription-Key": MOMO_COLL})
    assert st == 401 and "error" in j, j
    st, j, _, _ = sb.req("POST", "/collection/token/",
                         headers={"Authorization": basic(MOMO_USER,
                                                         MOMO_APIKEY),
                                  "Ocp-Apim-Subscription-Key": MOMO_COLL},
                         raw=b"{}")
    assert st == 400, j
    st, j, _, _ = sb.req("POST", "/collection/token/",
                         headers={"Authorization": basic(MOMO_USER,
                                                         MOMO_APIKEY),
                                  "Ocp-Apim-Subscription-Key": MOMO_COLL})
    assert j["token_type"] == "access_token" and j["expires_in"] == 3600
    tok = j["access_token"]
    ref, st, j = rtp(sb, tok, rx.url("/momo"))
    assert st == 202 and j is None
    st, s, _, _ = sb.req("GET", "/collection/v1_0/requesttopay/" + ref,
                         headers=momo_headers(tok))
    assert st == 200 and s["status"] in ("PENDING", "SUCCESSFUL"), s
    m = rx.get()
    assert m["method"] == "POST" and m["json"]["status"] == "SUCCESSFUL"
    assert m["json"]["financialTransactionId"]
    st, s, _, _ = sb.req("GET", "/collection/v1_0/requesttopay/" + ref,
                         headers=momo_headers(tok))
    assert s == m["json"], (s, m["json"])
    assert s["amount"] == "100" and s["payer"]["partyId"] == "46733123459"
    rx.none(0.3)  # sent once
    # the same X-Reference-Id again: 409, no second charge
    _, st, j = rtp(sb, tok, rx.url("/momo"), ref=ref)
    assert st == 409 and j["code"] == "RESOURCE_ALREADY_EXIST", j
    assert sb.ledger()["count"] == 1
    # magic numbers
    for msisdn, reason in (("46733123450", "INTERNAL_PROCESSING_ERROR"),
                           ("46733123451", "APPROVAL_REJECTED"),
                           ("46733123452", "EXPIRED"),
                           ("46733123456", "NOT_ENOUGH_FUNDS")):
        ref, st, _ = rtp(sb, tok, rx.url("/momo"), msisdn)
        m = rx.get()["json"]
        assert m["status"] == "FAILED" and m["reason"] == reason, m
        assert "financialTransactionId" not in m
        st, s, _, _ = sb.req("GET", "/collection/v1_0/requesttopay/" + ref,
                             headers=momo_headers(tok))
        assert st == 200 and s["status"] == "FAILED"
    ref, st, _ = rtp(sb, tok, rx.url("/momo"), "46733123454")
    rx.none(0.4)
    st, s, _, _ = sb.req("GET", "/collection/v1_0/requesttopay/" + ref,
                         headers=momo_headers(tok))
    assert s["status"] == "PENDING"
    # no callback URL: nothing sent, status still tells the truth
    ref, st, _ = rtp(sb, tok)
    sb.wait_state(ref, "succeeded")
    rx.none(0.2)
    # bad requests
    for h, body, want in (
            (momo_headers(tok, "not-a-uuid"), rtp_body(), 400),
            (momo_headers(tok, str(uuid.uuid1())), rtp_body(), 400),
            (momo_headers(tok, str(uuid.uuid4())),
             dict(rtp_body(), currency="UGX"), 500),
            (momo_headers(tok, str(uuid.uuid4())),
             dict(rtp_body(), amount=100), 400),
            (momo_headers(tok, str(uuid.uuid4())),
             dict(rtp_body(), payerMessage="it's"), 400),
            (dict(momo_headers(tok, str(uuid.uuid4())),
                  **{"X-Target-Environment": "mtnuganda"}), rtp_body(),
             500)):
        st, j, _, _ = sb.req("POST", "/collection/v1_0/requesttopay", body,
                             headers=h)
        assert st == want, (h, body, st, j)
    st, j, _, _ = sb.req("GET", "/collection/v1_0/requesttopay/" +
                         str(uuid.uuid4()), headers=momo_headers(tok))
    assert st == 404 and j["code"] == "RESOURCE_NOT_FOUND", j
    st, j, _, _ = sb.req("POST", "/collection/v1_0/requesttopay",
                         raw=b"{nope", headers=momo_headers(
                             tok, str(uuid.uuid4())))
    assert st == 400, j


def test_momo_disbursement(sb, rx):
    tok = momo_token(sb, "disbursement")
    ctok = momo_token(sb)
    ref = str(uuid.uuid4())
    body = {"amount": "2000", "currency": "EUR", "externalId": "12345678",
            "payee": {"partyIdType": "MSISDN", "partyId": "46733123459"},
            "payerMessage": "Payer message here",
            "payeeNote": "Payee note here"}
    st, j, _, _ = sb.req("POST", "/disbursement/v1_0/transfer", body,
                         headers=momo_headers(tok, ref, rx.url("/d"),
                                              MOMO_DISB))
    assert st == 202, j
    m = rx.get()["json"]
    assert m["status"] == "SUCCESSFUL" and m["payee"]["partyId"] == \
        "46733123459"
    st, s, _, _ = sb.req("GET", "/disbursement/v1_0/transfer/" + ref,
                         headers=momo_headers(tok, key=MOMO_DISB))
    assert st == 200 and s["status"] == "SUCCESSFUL"
    assert sb.charge(ref)["op"] == "transfer"
    # a collection token or key does not open disbursement
    st, j, _, _ = sb.req("GET", "/disbursement/v1_0/transfer/" + ref,
                         headers=momo_headers(ctok, key=MOMO_DISB))
    assert st == 401, j
    st, j, _, _ = sb.req("GET", "/disbursement/v1_0/transfer/" + ref,
                         headers=momo_headers(tok, key=MOMO_COLL))
    assert st == 401, j
    # a transfer is not a request to pay
    st, j, _, _ = sb.req("GET", "/collection/v1_0/requesttopay/" + ref,
                         headers=momo_headers(ctok))
    assert st == 404


def test_orange(sb, rx):
    st, j, _, _ = sb.req("POST", "/oauth/v3/token",
                         raw=b"grant_type=client_credentials",
                         headers={"Authorization": basic(ORANGE_ID, "bad"),
                                  "Content-Type":
                                  "application/x-www-form-urlencoded"})
    assert st == 401 and j["error"] == "invalid_client", j
    st, j, _, _ = sb.req("POST", "/oauth/v3/token", raw=b"grant_type=x",
                         headers={"Authorization": basic(ORANGE_ID,
                                                         ORANGE_SECRET),
                                  "Content-Type":
                                  "application/x-www-form-urlencoded"})
    assert st == 400, j
    tok = orange_token(sb)
    auth = {"Authorization": "Bearer " + tok}
    init = {"merchant_key": "e9afd305", "currency": "OUV",
            "order_id": "ORD-1", "amount": 15000,
            "return_url": "http://127.0.0.1/ret",
            "cancel_url": "http://127.0.0.1/cancel",
            "notif_url": rx.url("/orange"), "lang": "fr",
            "reference": "ref-1"}
    path = "/orange-money-webpay/dev/v1/webpayment"
    st, j, _, _ = sb.req("POST", path, init, headers=auth)
    assert st == 201 and j["status"] == 201 and j["message"] == "OK", j
    assert j["payment_url"].endswith("/pay_token/" + j["pay_token"])
    pay, notif = j["pay_token"], j["notif_token"]
    spath = "/orange-money-webpay/dev/v1/transactionstatus"
    sbody = {"order_id": "ORD-1", "amount": 15000, "pay_token": pay}
    m = rx.get()["json"]
    assert m["status"] == "SUCCESS" and m["notif_token"] == notif, m
    assert m["txnid"].startswith("MP")
    st, s, _, _ = sb.req("POST", spath, sbody, headers=auth)
    assert st == 201 and s["status"] == "SUCCESS" and \
        s["txnid"] == m["txnid"], s
    st, s, _, _ = sb.req("POST", spath, dict(sbody, amount=1),
                         headers=auth)
    assert st == 404, s
    st, j, _, _ = sb.req("POST", path, init, headers=auth)
    assert st == 400 and "order_id" in j["description"], j
    st, j, _, _ = sb.req("POST", path, dict(init, order_id="ORD-2",
                                            amount=9901), headers=auth)
    assert rx.get()["json"]["status"] == "FAILED"
    st, j, _, _ = sb.req("POST", path, dict(init, order_id="ORD-3",
                                            amount=9902), headers=auth)
    sb.wait_state(j["pay_token"], "failed")
    rx.none(0.3)  # an expired pay_token is not notified
    st, s, _, _ = sb.req("POST", spath,
                         {"order_id": "ORD-3", "amount": 9902,
                          "pay_token": j["pay_token"]}, headers=auth)
    assert s["status"] == "EXPIRED", s
    st, j, _, _ = sb.req("POST", path, dict(init, order_id="ORD-4",
                                            currency="XOF"), headers=auth)
    assert st == 400 and j["code"] == 21, j
    st, j, _, _ = sb.req("POST", path, dict(init, order_id="ORD-5"),
                         headers={"Authorization": "Bearer junk"})
    assert st == 401 and j["code"] == 41, j
    sb.ctl("POST", "/tokens/expire")
    st, j, _, _ = sb.req("POST", path, dict(init, order_id="ORD-6"),
                         headers=auth)
    assert st == 401 and j["code"] == 42, j


def test_flutterwave_bills(sb, rx):
    st, j, _, _ = sb.req("GET", "/v3/bill-categories",
                         headers={"Authorization": "Bearer FLWSECK_TEST-no"})
    assert st == 401 and j["status"] == "error", j
    st, j, _, _ = sb.req("GET", "/v3/bill-categories", headers=FLW_AUTH)
    assert st == 200 and j["message"] == \
        "bill categories retrieval successful", j
    power = [b for b in j["data"] if b["label_name"] == "Meter Number"][0]
    st, v, _, _ = sb.req("GET", "/v3/bill-items/%s/validate?code=%s&"
                         "customer=45066280321" % (power["item_code"],
                                                   power["biller_code"]),
                         headers=FLW_AUTH)
    assert st == 200 and v["data"]["name"] == "JOHN DOE" and \
        v["data"]["response_code"] == "00", v
    acct = [b for b in j["data"] if b["label_name"] == "Account Number"][0]
    st, v, _, _ = sb.req("GET", "/v3/bill-items/%s/validate?code=%s&"
                         "customer=1402000567" % (acct["item_code"],
                                                  acct["biller_code"]),
                         headers=FLW_AUTH)
    assert st == 200 and v["data"]["name"] == "JOHN DOE", v
    st, v, _, _ = sb.req("GET", "/v3/bill-items/%s/validate?code=%s&"
                         "customer=0000000000" % (power["item_code"],
                                                  power["biller_code"]),
                         headers=FLW_AUTH)
    assert st == 400 and v["status"] == "error", v
    st, c, _, _ = sb.req("POST", "/v3/billers/%s/items/%s/payment" %
                         (power["biller_code"], power["item_code"]),
                         {"country": "NG", "customer_id": "45066280321",
                          "amount": 500, "reference": "bill-1"},
                         headers=FLW_AUTH)
    assert st == 200 and c["message"] == "Bill payment successful", c
    assert c["data"]["token"] and c["data"]["reference"] == "bill-1"
    st, s, _, _ = sb.req("GET", "/v3/bills/" + c["data"]["flw_ref"],
                         headers=FLW_AUTH)
    assert st == 200 and s["data"]["amount"] == "500.0000" and \
        s["data"]["tx_ref"] == c["data"]["flw_ref"], s
    assert c["data"]["token"] in s["data"]["extra"]
    st, s2, _, _ = sb.req("GET", "/v3/bills/bill-1", headers=FLW_AUTH)
    assert s2["data"]["tx_ref"] == s["data"]["tx_ref"]
    st, c, _, _ = sb.req("POST", "/v3/bills",
                         {"country": "NG", "customer": "+23490803840303",
                          "amount": 100, "recurrence": "ONCE",
                          "type": "AIRTIME", "reference": "bill-2"},
                         headers=FLW_AUTH)
    assert st == 200 and c["data"]["network"] == "MTN" and \
        "token" not in c["data"], c
    st, c, _, _ = sb.req("POST", "/v3/bills",
                         {"country": "NG", "customer": "+23490803840303",
                          "amount": 100, "recurrence": "ONCE",
                          "type": "AIRTIME", "reference": "bill-2"},
                         headers=FLW_AUTH)
    assert st == 400 and c["message"] == "Duplicate reference", c
    st, c, _, _ = sb.req("POST", "/v3/bills",
                         {"country": "GH", "customer": "+23490803840303",
                          "amount": 100, "type": "AIRTIME"},
                         headers=FLW_AUTH)
    assert st == 400, c
    st, c, _, _ = sb.req("POST", "/v3/bills",
                         {"country": "NG", "customer": "+23490803849901",
                          "amount": 100, "type": "AIRTIME",
                          "reference": "bill-3"}, headers=FLW_AUTH)
    assert st == 400 and c["status"] == "error", c
    st, s, _, _ = sb.req("GET", "/v3/bills/nope", headers=FLW_AUTH)
    assert st == 400, s
    bills = sb.ledger(provider="flutterwave")
    assert [x["state"] for x in bills["charges"]] == ["succeeded"] * 2


def flw_charge(sb, txref, phone="254708374149", kind="mpesa", extra=None):
    body = {"tx_ref": txref, "amount": "150", "currency": "KES",
            "email": "a@example.com", "phone_number": phone,
            "fullname": "John Doe"}
    body.update(extra or {})
    return sb.req("POST", "/v3/charges?type=" + kind, body, headers=FLW_AUTH)


def test_flutterwave_momo(sb, rx):
    sb.ctl("POST", "/webhooks", {"flutterwave": rx.url("/flw")})
    st, j, _, _ = flw_charge(sb, "tx-1")
    assert st == 200 and j["data"]["status"] == "pending" and \
        j["data"]["auth_model"] == "LIPA_MPESA", j
    fid = j["data"]["id"]
    m = rx.get()
    assert m["headers"]["verif-hash"] == FLW_HASH
    assert m["json"]["event"] == "charge.completed"
    assert m["json"]["data"]["status"] == "successful"
    assert m["json"]["event.type"] == "MPESA_TRANSACTION"
    assert m["json"]["data"]["tx_ref"] == "tx-1"
    st, v, _, _ = sb.req("GET", "/v3/transactions/%d/verify" % fid,
                         headers=FLW_AUTH)
    assert st == 200 and v["data"]["status"] == "successful" and \
        v["data"]["amount"] == "150" and v["data"]["currency"] == "KES", v
    st, v, _, _ = sb.req("GET", "/v3/transactions/verify_by_reference?"
                         "tx_ref=tx-1", headers=FLW_AUTH)
    assert v["data"]["id"] == fid
    st, j, _, _ = flw_charge(sb, "tx-1")
    assert st == 400, j
    st, j, _, _ = flw_charge(sb, "tx-2", phone="254708379901")
    m = rx.get()["json"]
    assert m["data"]["status"] == "failed", m
    st, j, _, _ = flw_charge(sb, "tx-3", kind="mobile_money_ghana",
                             extra={"currency": "GHS", "network": "MTN"})
    assert st == 200 and j["meta"]["authorization"]["mode"] == \
        "redirect", j
    assert rx.get()["json"]["event.type"] == "MOBILEMONEYGH_TRANSACTION"
    st, j, _, _ = flw_charge(sb, "tx-4", kind="mobile_money_franco",
                             extra={"currency": "XAF", "country": "CM"})
    assert j["meta"]["authorization"]["mode"] == "callback", j
    rx.get()
    st, j, _, _ = flw_charge(sb, "tx-5", kind="nope")
    assert st == 400
    st, j, _, _ = flw_charge(sb, "tx-6", extra={"currency": "NGN"})
    assert st == 400
    st, j, _, _ = sb.req("GET", "/v3/transactions/999/verify",
                         headers=FLW_AUTH)
    assert st == 400 and j["message"] == \
        "No transaction was found for this id", j


def ps_charge(sb, ref, phone="0553241149", amount=10000):
    body = {"amount": amount, "email": "customer@email.com",
            "currency": "GHS",
            "mobile_money": {"phone": phone, "provider": "mtn"}}
    if ref:
        body["reference"] = ref
    return sb.req("POST", "/charge", body, headers=PS_AUTH)


def test_paystack(sb, rx):
    sb.ctl("POST", "/webhooks", {"paystack": rx.url("/ps")})
    st, j, _, _ = ps_charge(sb, "ps-1")
    assert st == 200 and j["status"] is True and \
        j["data"]["status"] == "pay_offline", j
    st, v, _, _ = sb.req("GET", "/transaction/verify/ps-1", headers=PS_AUTH)
    assert v["data"]["status"] in ("ongoing", "success"), v
    m = rx.get()
    sig = hmac.new(PAYSTACK_SECRET.encode(), m["raw"],
                   hashlib.sha512).hexdigest()
    assert m["headers"]["x-paystack-signature"] == sig
    assert m["json"]["event"] == "charge.success"
    assert m["json"]["data"]["reference"] == "ps-1"
    assert m["json"]["data"]["amount"] == 10000
    assert m["json"]["data"]["channel"] == "mobile_money"
    assert m["json"]["data"]["authorization"]["bank"] == "MTN Mobile Money"
    st, v, _, _ = sb.req("GET", "/transaction/verify/ps-1", headers=PS_AUTH)
    assert st == 200 and v["message"] == "Verification successful" and \
        v["data"]["status"] == "success", v
    st, v, _, _ = sb.req("GET", "/charge/ps-1", headers=PS_AUTH)
    assert v["data"]["status"] == "success"
    st, j, _, _ = ps_charge(sb, "ps-1")
    assert st == 400 and j["message"] == "Duplicate Transaction Reference"
    st, j, _, _ = ps_charge(sb, "ps-2", phone="0553249901")
    sb.wait_state("ps-2", "failed")
    rx.none(0.3)  # no webhook for a failed charge
    st, v, _, _ = sb.req("GET", "/transaction/verify/ps-2", headers=PS_AUTH)
    assert v["data"]["status"] == "failed"
    st, j, _, _ = ps_charge(sb, None)
    assert st == 200 and j["data"]["reference"]
    rx.get()
    st, j, _, _ = sb.req("POST", "/charge", {"amount": 1}, headers=PS_AUTH)
    assert st == 400 and j["status"] is False
    st, j, _, _ = sb.req("GET", "/transaction/verify/ps-1",
                         headers={"Authorization": "Bearer sk_test_x"})
    assert st == 401 and j == {"status": False, "message": "Invalid key"}
    st, j, _, _ = sb.req("GET", "/transaction/verify/nope", headers=PS_AUTH)
    assert st == 400 and j["message"] == "Transaction reference not found"


def test_https_callback(build, rx):
    sb = Sandbox(build, ["--callback-delay-ms", "50"]).start()
    hr = Receiver(tls_dir=sb.tls)
    try:
        tok = mpesa_token(sb)
        st, j, _, _ = stk_push(sb, tok, hr.url("/secure"))
        assert st == 200
        m = hr.get()
        assert m["path"] == "/secure" and \
            m["json"]["Body"]["stkCallback"]["ResultCode"] == 0
        sb.wait_state(j["CheckoutRequestID"], "succeeded")
        # the receiver holds the message before it answers the POST: the
        # sandbox counts the callback ok once that answer reaches it
        end = time.monotonic() + 5
        while (sb.charge(j["CheckoutRequestID"])["callbacks_ok"] != 1 and
               time.monotonic() < end):
            time.sleep(0.02)
        assert sb.charge(j["CheckoutRequestID"])["callbacks_ok"] == 1
    finally:
        hr.close()
        sb.stop()


# ------------------------------------------------------------ faults

def test_fault_delay(sb, rx):
    tok = momo_token(sb)
    ref, st, _ = rtp(sb, tok)
    sb.faults({"provider": "momo", "op": "requesttopay_status",
               "fault": "delay", "ms": 400})
    t = time.monotonic()
    st, s, _, _ = sb.req("GET", "/collection/v1_0/requesttopay/" + ref,
                         headers=momo_headers(tok))
    assert st == 200 and time.monotonic() - t >= 0.38
    st, j = sb.ctl("GET", "/stats")
    assert j["faults"]["delay"] == 1


def test_fault_timeout(sb, rx):
    tok = mpesa_token(sb)
    sb.faults({"provider": "mpesa", "op": "stkpush", "fault": "timeout",
               "count": 1})
    try:
        sb.fresh("POST", "/mpesa/stkpush/v1/processrequest",
                 stk_body(rx.url("/stk"), aref="TMO"),
                 headers={"Authorization": "Bearer " + tok}, timeout=1)
        raise AssertionError("answered despite the timeout fault")
    except socket.timeout:
        pass
    # committed: the charge exists, completes and calls back
    cb = rx.get()["json"]["Body"]["stkCallback"]
    c = sb.charge(cb["CheckoutRequestID"])
    assert c["client_ref"] == "TMO" and c["state"] == "succeeded"
    # the client went away: the held request is dropped at once
    end = time.monotonic() + 5
    while sb.ctl("GET", "/stats")[1]["held_answers"] != 0:
        assert time.monotonic() < end, "held answer not dropped"
        time.sleep(0.02)
    # count exhausted: the next one is answered
    st, j, _, _ = stk_push(sb, tok, rx.url("/stk"))
    assert st == 200
    rx.get()


def test_fault_reset_after_commit(sb, rx):
    tok = momo_token(sb)
    sb.faults({"provider": "momo", "op": "requesttopay",
               "fault": "reset_after_commit", "count": 1})
    ref = str(uuid.uuid4())
    try:
        sb.fresh("POST", "/collection/v1_0/requesttopay", rtp_body(),
                 headers=momo_headers(tok, ref, rx.url("/m")))
        raise AssertionError("answered despite reset_after_commit")
    except (ConnectionResetError, http.client.RemoteDisconnected,
            ssl.SSLError, BrokenPipeError):
        pass
    assert sb.charge(ref)["provider_ref"] == ref
    rx.get()
    # the client retries with the same id: 409, still one charge
    _, st, j = rtp(sb, tok, ref=ref)
    assert st == 409
    led = sb.ledger()
    assert led["count"] == 1 and led["by_client_ref_succeeded_max"] == 1


def test_fault_error500_after_commit(sb, rx):
    sb.faults({"provider": "paystack", "op": "charge",
               "fault": "error500_after_commit", "count": 1})
    st, j, _, _ = ps_charge(sb, "ps-500")
    assert st == 500 and j["status"] is False, j
    assert sb.charge("ps-500")
    st, j, _, _ = ps_charge(sb, "ps-500")
    assert st == 400 and j["message"] == "Duplicate Transaction Reference"


def test_fault_no_callback(sb, rx):
    sb.ctl("POST", "/webhooks", {"flutterwave": rx.url("/flw")})
    sb.faults({"provider": "flutterwave", "op": "charge",
               "fault": "no_callback"})
    st, j, _, _ = flw_charge(sb, "nocb-1")
    assert st == 200
    c = sb.wait_state(j["data"]["flw_ref"], "succeeded")
    rx.none(0.4)
    assert c["callbacks_sent"] == 0


def test_fault_callback_twice(sb, rx):
    tok = momo_token(sb)
    sb.faults({"provider": "momo", "op": "requesttopay",
               "fault": "callback_twice"})
    ref, st, _ = rtp(sb, tok, rx.url("/m"))
    a, b = rx.get(), rx.get()
    assert a["raw"] == b["raw"] and a["json"]["status"] == "SUCCESSFUL"
    sb.wait_state(ref, "succeeded")
    end = time.monotonic() + 5
    while sb.charge(ref)["callbacks_ok"] < 2 and time.monotonic() < end:
        time.sleep(0.02)
    c = sb.charge(ref)
    assert c["callbacks_sent"] == 2 and c["callbacks_ok"] == 2, c
    assert sb.ledger()["by_client_ref_succeeded_max"] == 1


def test_fault_callback_before_response(sb, rx):
    tok = mpesa_token(sb)
    sb.faults({"provider": "mpesa", "op": "stkpush",
               "fault": "callback_before_response"})
    st, j, _, _ = stk_push(sb, tok, rx.url("/stk"))
    t_resp = time.monotonic()
    assert st == 200
    m = rx.get(timeout=0.01)  # already there when the answer arrived
    assert m["t"] <= t_resp
    assert m["json"]["Body"]["stkCallback"]["CheckoutRequestID"] == \
        j["CheckoutRequestID"]


def test_fault_contradicting_callback(sb, rx):
    tok = mpesa_token(sb)
    sb.faults({"provider": "mpesa", "op": "stkpush",
               "fault": "contradicting_callback"})
    st, j, _, _ = stk_push(sb, tok, rx.url("/stk"))
    cb = rx.get()["json"]["Body"]["stkCallback"]
    assert cb["ResultCode"] == 1032  # the callback says cancelled
    st, q, _, _ = stk_query(sb, tok, j["CheckoutRequestID"])
    assert q["ResultCode"] == "0"  # the truth: paid
    # and the other way round: a failure reported as a success
    st, j, _, _ = stk_push(sb, tok, rx.url("/stk"), phone="254700001032")
    cb = rx.get()["json"]["Body"]["stkCallback"]
    assert cb["ResultCode"] == 0 and "CallbackMetadata" in cb
    st, q, _, _ = stk_query(sb, tok, j["CheckoutRequestID"])
    assert q["ResultCode"] == "1032"
    # Paystack: a charge.success webhook for a failed charge
    sb.ctl("POST", "/webhooks", {"paystack": rx.url("/ps")})
    sb.faults({"provider": "paystack", "op": "charge",
               "fault": "contradicting_callback"})
    ps_charge(sb, "lie-1", phone="0553249901")
    m = rx.get()["json"]
    assert m["event"] == "charge.success"
    st, v, _, _ = sb.req("GET", "/transaction/verify/lie-1", headers=PS_AUTH)
    assert v["data"]["status"] == "failed"


def test_fault_expired_token(sb, rx):
    tok = mpesa_token(sb)
    st, j, _, _ = stk_push(sb, tok, rx.url("/stk"))
    rx.get()
    sb.faults({"provider": "mpesa", "op": "stkquery",
               "fault": "expired_token", "count": 1})
    st, q, _, _ = stk_query(sb, tok, j["CheckoutRequestID"])
    assert st == 404 and q["errorCode"] == "404.001.03", q
    st, q, _, _ = stk_query(sb, tok, j["CheckoutRequestID"])
    assert st == 200, q
    mt = momo_token(sb)
    sb.faults({"provider": "momo", "op": "*", "fault": "expired_token",
               "count": 1})
    _, st, j = rtp(sb, mt)
    assert st == 401, j
    _, st, j = rtp(sb, mt)
    assert st == 202, j
    st, f = sb.ctl("GET", "/faults")
    assert f["rules"][0]["fired"] == 1 and f["rules"][0]["count"] == 0


def test_fault_msisdn_and_rate(build, rx):
    def pattern(seed):
        sb = Sandbox(build, ["--seed", str(seed),
                             "--callback-delay-ms", "20"]).start()
        try:
            tok = momo_token(sb)
            sb.faults({"provider": "momo", "op": "requesttopay",
                       "fault": "error500_after_commit", "rate": 0.5})
            out = []
            for _ in range(24):
                _, st, _ = rtp(sb, tok)
                out.append(st)
            st, j = sb.ctl("GET", "/stats")
            assert j["faults"]["error500_after_commit"] == out.count(500)
            # msisdn: only that customer is hit
            sb.faults({"provider": "*", "op": "*",
                       "fault": "error500_after_commit",
                       "msisdn": "46733123499"})
            _, st, _ = rtp(sb, tok, msisdn="46733123498")
            assert st == 202
            _, st, _ = rtp(sb, tok, msisdn="46733123499")
            assert st == 500
            return out
        finally:
            sb.stop()
    a, b, c = pattern(42), pattern(42), pattern(43)
    assert a == b, (a, b)
    assert 0 < a.count(500) < len(a), a
    assert a != c  # 2^-24 chance of a false failure


def test_faults_api_errors(sb, rx):
    for body in ({"rules": [{"provider": "nope", "fault": "delay"}]},
                 {"rules": [{"provider": "mpesa", "op": "x",
                             "fault": "delay", "ms": 1}]},
                 {"rules": [{"provider": "mpesa", "fault": "bogus"}]},
                 {"rules": [{"provider": "mpesa", "fault": "delay"}]},
                 {"rules": [{"provider": "mpesa", "fault": "timeout",
                             "rate": 2}]},
                 {"rules": "x"}, {"nope": 1}):
        st, j = sb.ctl("POST", "/faults", body)
        assert st == 400 and "error" in j, (body, j)
    st, j = sb.ctl("POST", "/faults", {"rules": [
        {"provider": "mpesa", "op": "stkpush", "fault": "no_callback"}] * 65})
    assert st == 400
    c = http.client.HTTPConnection("127.0.0.1", sb.ctl_port, timeout=5)
    c.request("POST", "/faults", body=b"{not json")
    r = c.getresponse()
    r.read()
    assert r.status == 400
    st, j = sb.ctl("DELETE", "/faults")
    assert st == 200 and j["rules"] == 0
    st, j = sb.ctl("GET", "/nothing")
    assert st == 404


# ------------------------------------------------------------ ledger

def test_ledger_double_charge_visible(sb, rx):
    tok = mpesa_token(sb)
    for _ in range(2):
        st, j, _, _ = stk_push(sb, tok, rx.url("/stk"), aref="ORDER-9")
        assert st == 200
        rx.get()
    stk_push(sb, tok, rx.url("/stk"), aref="ORDER-10")
    rx.get()
    led = sb.ledger()
    assert led["by_client_ref_succeeded_max"] == 2, led
    assert led["count"] == 3 and led["succeeded"] == 3
    one = sb.ledger(client_ref="ORDER-9")
    assert one["count"] == 2
    for c in led["charges"]:
        assert set(c) >= {"provider", "op", "provider_ref", "client_ref",
                          "msisdn", "amount", "currency", "state",
                          "callbacks_sent"}
    assert sb.ledger(provider="momo")["count"] == 0
    st, s = sb.ctl("GET", "/stats")
    assert s["requests"]["mpesa.stkpush"] == 3
    assert s["requests"]["mpesa.oauth"] == 1
    assert s["callbacks"]["sent"] == 3
    st, j = sb.ctl("POST", "/reset")
    assert st == 200 and sb.ledger()["count"] == 0


def test_bounds(build, rx):
    sb = Sandbox(build, ["--max-charges", "2", "--max-connections", "2",
                         "--callback-delay-ms", "20"]).start()
    try:
        tok = mpesa_token(sb)
        for i in range(2):
            st, j, _, _ = stk_push(sb, tok, rx.url("/stk"))
            assert st == 200
        st, j, _, _ = stk_push(sb, tok, rx.url("/stk"))
        assert st == 500 and j["errorCode"] == "500.003.02", j
        st, s = sb.ctl("GET", "/stats")
        assert s["charges_refused"] == 1 and s["charges"] == 2
        # body past 64 KiB: refused as soon as the headers announce it
        s = sb.ctx.wrap_socket(socket.create_connection(
            ("127.0.0.1", sb.https_port), timeout=5),
            server_hostname="127.0.0.1")
        s.sendall(b"POST /mpesa/stkpush/v1/processrequest HTTP/1.1\r\n"
                  b"Host: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 70000\r\n\r\n")
        head = s.recv(4096)
        s.close()
        assert head.startswith(b"HTTP/1.1 413"), head[:100]
        # connections: the one in use plus one more, then 503
        if sb.conn:
            sb.conn.close()
            sb.conn = None
        conns = []
        for i in range(3):
            c = http.client.HTTPSConnection("127.0.0.1", sb.https_port,
                                            context=sb.ctx, timeout=5)
            c.request("GET", "/v3/bill-categories", headers=FLW_AUTH)
            r = c.getresponse()
            r.read()
            conns.append((c, r.status))
        assert [s for _, s in conns] == [200, 200, 503], conns
        for c, _ in conns:
            c.close()
        end = time.monotonic() + 5
        while sb.ctl("GET", "/stats")[1]["connections"] > 0:
            assert time.monotonic() < end, "connections not released"
            time.sleep(0.02)
        st, s = sb.ctl("GET", "/stats")
        assert s["connections_refused"] == 1
    finally:
        sb.stop()


def test_keepalive_hot_paths(sb, rx):
    tok = mpesa_token(sb)
    st, j, _, _ = stk_push(sb, tok, rx.url("/stk"))
    rx.get()
    mt = momo_token(sb)
    ref, st, _ = rtp(sb, mt)
    sb.wait_state(ref, "succeeded")
    conn = http.client.HTTPSConnection("127.0.0.1", sb.https_port,
                                       context=sb.ctx, timeout=5)
    t = time.monotonic()
    n = 300
    for _ in range(n):
        conn.request("GET", "/collection/v1_0/requesttopay/" + ref,
                     headers=momo_headers(mt))
        r = conn.getresponse()
        r.read()
        assert r.status == 200
    dt = time.monotonic() - t
    conn.close()
    st, s = sb.ctl("GET", "/stats")
    assert s["requests"]["momo.requesttopay_status"] == n
    print("    (%d keep-alive MoMo status calls in %.2f s)" % (n, dt))


def test_shutdown_with_work_in_flight(build, rx):
    sb = Sandbox(build, ["--callback-delay-ms", "5000"]).start()
    tok = mpesa_token(sb)
    sb.faults({"provider": "mpesa", "op": "stkquery", "fault": "timeout"})
    stk_push(sb, tok, rx.url("/stk"))
    s = socket.create_connection(("127.0.0.1", sb.https_port))
    tls = sb.ctx.wrap_socket(s, server_hostname="127.0.0.1")
    ts = eat_now()
    body = json.dumps({"BusinessShortCode": SHORTCODE,
                       "Password": stk_password(ts), "Timestamp": ts,
                       "CheckoutRequestID": "x"}).encode()
    tls.sendall(b"POST /mpesa/stkpushquery/v1/query HTTP/1.1\r\n"
                b"Host: x\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer " + tok.encode() +
                b"\r\nContent-Length: " + str(len(body)).encode() +
                b"\r\n\r\n" + body)
    end = time.monotonic() + 5
    while sb.ctl("GET", "/stats")[1]["held_answers"] < 1:
        assert time.monotonic() < end
        time.sleep(0.02)
    sb.stop()  # SIGTERM: exit 0, no sanitizer report
    tls.close()


def test_callback_refused(build, rx):
    """A callback whose receiver refuses the connection counts as failed
    and frees everything (under the sanitizer build the sandbox's exit is
    checked for leaks: libevent 2.1.12 does not free a connection that
    never connected when free_on_completion is set)."""
    sb = Sandbox(build, ["--callback-delay-ms", "10"]).start()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connect() is refused
    try:
        tok = mpesa_token(sb)
        for _ in range(3):
            st, _, _, _ = stk_push(sb, tok,
                                   "http://127.0.0.1:%d/cb" % port)
            assert st == 200
        end = time.monotonic() + 5
        while sb.ctl("GET", "/stats")[1]["callbacks"]["failed"] < 3:
            assert time.monotonic() < end, sb.ctl("GET", "/stats")[1]
            time.sleep(0.02)
        assert sb.ctl("GET", "/stats")[1]["callbacks"]["in_flight"] == 0
    finally:
        sb.stop()  # exit 0, no sanitizer report


def test_paystack_otp_pin(sb, rx):
    """Magic numbers: ...9911 asks for an OTP, ...9912 for a PIN then an
    OTP; the charge runs only once they are right; three wrong answers
    fail it."""
    def submit(what, ref, value):
        return sb.req("POST", "/charge/submit_" + what,
                      {what: value, "reference": ref}, headers=PS_AUTH)

    st, j, _, _ = ps_charge(sb, "otp-1", phone="0553249911")
    assert st == 200 and j["data"]["status"] == "send_otp", j
    assert j["data"]["display_text"], j
    st, c, _, _ = sb.req("GET", "/charge/otp-1", headers=PS_AUTH)
    assert c["data"]["status"] == "send_otp", c
    time.sleep(0.3)  # longer than the callback delay: not started
    st, v, _, _ = sb.req("GET", "/transaction/verify/otp-1", headers=PS_AUTH)
    assert v["data"]["status"] == "ongoing", v
    st, j, _, _ = submit("pin", "otp-1", "1234")
    assert st == 400 and j["status"] is False, j
    st, j, _, _ = submit("otp", "otp-1", "000000")
    assert st == 400 and j["message"] == "Invalid OTP", j
    st, j, _, _ = submit("otp", "nope", "123456")
    assert st == 400 and j["message"] == "Transaction reference not found"
    st, j, _, _ = submit("otp", "otp-1", "123456")
    assert st == 200 and j["data"]["status"] == "pay_offline", j
    sb.wait_state("otp-1", "succeeded")
    st, j, _, _ = submit("otp", "otp-1", "123456")
    assert st == 400, j  # not awaiting it any more
    st, j, _, _ = ps_charge(sb, "pin-1", phone="0553249912")
    assert j["data"]["status"] == "send_pin", j
    st, j, _, _ = submit("pin", "pin-1", "1234")
    assert st == 200 and j["data"]["status"] == "send_otp", j
    st, j, _, _ = submit("otp", "pin-1", "123456")
    assert st == 200, j
    sb.wait_state("pin-1", "succeeded")
    st, j, _, _ = ps_charge(sb, "otp-2", phone="0553249911")
    for bad in ("1", "2"):
        st, j, _, _ = submit("otp", "otp-2", bad)
        assert st == 400, j
    st, j, _, _ = submit("otp", "otp-2", "3")
    assert st == 200 and j["data"]["status"] == "failed", j
    sb.wait_state("otp-2", "failed")
    for _ in range(2):  # the webhooks of the two successes
        rx.get()


SHARED = [test_tls_files, test_mpesa_oauth, test_mpesa_stk_success,
          test_mpesa_stk_failures, test_mpesa_stk_bad_requests,
          test_token_expiry, test_mpesa_c2b, test_mpesa_b2c,
          test_mpesa_status_reversal, test_momo_collection,
          test_momo_disbursement, test_orange, test_flutterwave_bills,
          test_flutterwave_momo, test_paystack, test_paystack_otp_pin,
          test_fault_delay,
          test_fault_timeout, test_fault_reset_after_commit,
          test_fault_error500_after_commit, test_fault_no_callback,
          test_fault_callback_twice, test_fault_callback_before_response,
          test_fault_contradicting_callback, test_fault_expired_token,
          test_faults_api_errors, test_ledger_double_charge_visible,
          test_keepalive_hot_paths]
OWN = [test_token_ttl, test_https_callback, test_fault_msisdn_and_rate,
       test_bounds, test_shutdown_with_work_in_flight,
       test_callback_refused]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--only", default=None)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    passed = failed = 0
    rx = Receiver()
    sb = Sandbox(build, ["--callback-delay-ms", "100", "--seed", "7"]).start()

    def want(fn):
        return not a.only or any(w in fn.__name__ for w in a.only.split(","))

    for fn in SHARED + OWN:
        if not want(fn):
            continue
        t = time.monotonic()
        try:
            if fn in SHARED:
                sb.ctl("POST", "/reset")
                sb.ctl("POST", "/webhooks", {"paystack": rx.url("/ps"),
                                             "flutterwave": rx.url("/flw")})
                rx.responses.clear()
                fn(sb, rx)
                rx.none(0.05)  # nothing unexpected left over
            else:
                fn(build, rx)
            passed += 1
            print("ok   %-40s %.2fs" % (fn.__name__, time.monotonic() - t),
                  flush=True)
        except Exception:
            failed += 1
            print("FAIL %s" % fn.__name__, flush=True)
            traceback.print_exc()
            rx.drain()
    try:
        sb.stop()
        passed += 1
        print("ok   %-40s" % "clean_exit_and_no_sanitizer_report")
    except Exception:
        failed += 1
        print("FAIL clean_exit")
        traceback.print_exc()
    rx.close()
    print("sandbox: %d passed, %d failed" % (passed, failed), flush=True)
    if failed == 0:
        for d in WORKDIRS:
            shutil.rmtree(d, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
