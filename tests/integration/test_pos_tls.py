"""test_pos_tls.py - the POS listener over TLS (docs/pos-protocol.md §4.6).

A throwaway CA and a server certificate for 127.0.0.1 are made in the test
with the openssl command-line tool (scripts/deps.sh test installs it;
Python's ssl module can verify certificates but not make them).  Checked:
login, transfers, a duplicate and STATUS over TLS from a Python client and
from soko-pos (libsokoterm's TLS helper, --tls-ca); a client trusting
another CA refuses the server; a plaintext client against the TLS listener
is closed without a crash; a connection that never finishes its handshake
is closed at the login deadline; the protocol's MAC and counters still
apply under TLS; and the cert/key pair is all or nothing in the config.

soko-pos fleet over TLS: 50 terminals, each link on OpenSSL over its
non-blocking socket, links dropped every 20 ms (a new handshake each),
every approved transfer checked once against the server; a fleet that
trusts another CA gets nothing through and says why.

Also the plaintext transport's edges (net_pos.c reads into a shared
scratch buffer and keeps only unfinished frames per connection, with its
deadlines in a timing wheel): frames split across reads and sent byte by
byte, several frames in one read, the absolute login deadline (a trickle
does not extend it)."""
import os
import socket
import ssl
import subprocess
import tempfile
import time

from harness import SAN_MARKERS, WORKDIRS
from test_fleet import FleetSokod, results
from test_pos import (APPROVED, BAD_MAC, DUPLICATE, ECHO, FAIL,
                      FLOAT_TRANSFER, LOGIN, LOGIN_OK, RESP, STATUS, Closed,
                      PosSokod, Term, frame)


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   capture_output=True, timeout=60)


def make_ca(d, name):
    """d/NAME-ca.pem (+ key): a self-signed EC P-256 CA."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-keyout", name + "-ca.key", "-out", name + "-ca.pem",
            "-subj", "/CN=soko test CA " + name,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    return os.path.join(d, name + "-ca.pem")


def make_server(d, ca):
    """d/server.pem + server.key signed by CA ca, for 127.0.0.1 and
    localhost."""
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1", cwd=d)
    openssl("x509", "-req", "-in", "server.csr", "-CA", ca + "-ca.pem",
            "-CAkey", ca + "-ca.key", "-CAcreateserial", "-days", "2",
            "-out", "server.pem", "-extfile", "server.ext", cwd=d)
    os.chmod(os.path.join(d, "server.key"), 0o600)
    return os.path.join(d, "server.pem"), os.path.join(d, "server.key")


class TlsTerm(Term):
    """test_pos.Term over TLS, verifying the server against cafile."""

    def __init__(self, port, tid, kt, cafile):
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.tid, self.kt, self.ks = tid, kt, None
        self.tx, self.rx, self.req = 1, 0, 0
        self.buf = b""


def certs():
    """A work directory with two CAs ("good", "other") and a server
    certificate signed by the good one: (dir, good CA, other CA, sokod
    options for the certificate and its key)."""
    d = tempfile.mkdtemp(prefix="soko-tls-")
    WORKDIRS.append(d)
    ca = make_ca(d, "good")
    other = make_ca(d, "other")
    cert, key = make_server(d, os.path.join(d, "good"))
    return d, ca, other, ["-o", "pos_tls_cert_file=" + cert,
                          "-o", "pos_tls_key_file=" + key]


def setup(build, extra=()):
    d, ca, other, opts = certs()
    s = PosSokod(build)
    s.extra += opts + list(extra)
    s.ctl("account", "create", "clearing:mpesa", "provider_clearing", "KES")
    for a in ("A1", "A2"):
        s.ctl("account", "create", "agent:%s:float" % a, "agent_float", "KES")
        s.ctl("agent", "create", a, "agent:%s:float" % a)
    keys = {"T1": s.terminal_add("T1", "A1"),
            "T2": s.terminal_add("T2", "A2")}
    s.start()
    st, _, data = s.move("fund-A1", {"type": "float_topup", "currency": "KES",
                                     "amount": "1000.00",
                                     "debit": "clearing:mpesa",
                                     "credit": "agent:A1:float"})
    assert st == 201, data
    return s, keys, d, ca, other


def soko_pos(s, d, tid, key, ca, script, timeout="20"):
    r = subprocess.run([os.path.join(s.build, "soko-pos"), "script",
                        "--server", "127.0.0.1:%d" % s.pos_port,
                        "--terminal", tid, "--key", key.hex(),
                        "--queue", os.path.join(d, tid + ".db"),
                        "--timeout", timeout, "--tls-ca", ca],
                       input=script, capture_output=True, text=True,
                       timeout=120)
    for m in SAN_MARKERS:
        assert m not in r.stderr, r.stderr[-4000:]
    return r


def t_pos_tls_login_transfer(build):
    s, keys, d, ca, _ = setup(build)
    try:
        # a Python client: login, transfer, duplicate, STATUS
        t = TlsTerm(s.pos_port, "T1", keys["T1"], ca)
        assert t.s.version() in ("TLSv1.2", "TLSv1.3"), t.s.version()
        typ, body, _, _ = t.login()
        assert typ == LOGIN_OK, (hex(typ), body)
        txn = os.urandom(16)
        typ, r1 = t.transfer(txn, 10000, "A2")
        assert r1[1] == APPROVED, r1
        _, r2 = t.transfer(txn, 10000, "A2")
        assert r2[1] == DUPLICATE and r2[7] == APPROVED, r2
        typ, st = t.request(STATUS, {1: txn})
        assert typ == STATUS | RESP and st[1] == APPROVED, st
        # the MAC is checked under TLS as without it
        typ, body = t.request(ECHO, {1: 1}, corrupt=True)
        assert typ == ECHO | FAIL and body[1] == BAD_MAC, body
        t.expect_closed()
        # soko-pos through libsokoterm's TLS helper
        r = soko_pos(s, d, "T1", keys["T1"], ca,
                     "float_transfer A2 5.00 KES\nwait\nstatus last\n"
                     "echo\n")
        assert r.returncode == 0, (r.stdout, r.stderr)
        res = results(r.stdout)
        assert [x["code"] for x in res] == ["APPROVED"] * 3, r.stdout
        assert s.balance("agent:A1:float") == "895.00"
        assert s.balance("agent:A2:float") == "105.00"
        s.ctl("verify")
    finally:
        s.stop()


def t_pos_tls_refusals(build):
    s, keys, d, ca, other = setup(build,
                                  ["-o", "pos_login_timeout_ms=800"])
    try:
        # a client that trusts another CA refuses the server
        try:
            TlsTerm(s.pos_port, "T1", keys["T1"], other)
            raise AssertionError("handshake accepted a wrong CA")
        except ssl.SSLCertVerificationError:
            pass
        r = soko_pos(s, d, "T2", keys["T2"], other, "echo\n", timeout="3")
        assert "certificate" in r.stderr, r.stderr
        assert "link up" not in r.stdout, r.stdout
        assert "code=APPROVED" not in r.stdout, r.stdout
        # a plaintext client: its LOGIN is not a ClientHello; closed,
        # never answered with a POS frame
        t = Term(s.pos_port, "T1", keys["T1"])
        t.s.sendall(b"\x00\x40" + os.urandom(64))
        try:
            t.read_frame()
            raise AssertionError("a POS frame to a plaintext client")
        except (Closed, ConnectionResetError, AssertionError, KeyError,
                ValueError, IndexError):
            pass
        t.close()
        # a connection that never starts its handshake: closed at the
        # login deadline (800 ms)
        raw = socket.create_connection(("127.0.0.1", s.pos_port),
                                       timeout=10)
        t0 = time.monotonic()
        assert raw.recv(100) == b""
        waited = time.monotonic() - t0
        assert 0.5 < waited < 5, waited
        raw.close()
        # nobody logged in, and the server still serves
        t = TlsTerm(s.pos_port, "T2", keys["T2"], ca)
        assert t.login()[0] == LOGIN_OK
        t.close()
        err = s.stderr_text()
        assert "event=tls_failed" in err, err[-2000:]
        assert keys["T1"].hex() not in err and keys["T2"].hex() not in err
    finally:
        s.stop()


def t_pos_tls_config(build):
    """pos_tls_cert_file and pos_tls_key_file: both or neither."""
    d = tempfile.mkdtemp(prefix="soko-tls-cfg-")
    WORKDIRS.append(d)
    sokod = os.path.join(build, "sokod")
    kek = os.path.join(d, "kek")
    with open(kek, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    base = [sokod, "-t", "-o", "pos_listen=127.0.0.1:0",
            "-o", "pos_kek_file=" + kek]
    r = subprocess.run(base + ["-o", "pos_tls_cert_file=" + kek],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "both or neither" in r.stderr, r.stderr
    r = subprocess.run(base, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    # a bad certificate file: sokod refuses to start, saying why
    s = PosSokod(build)
    s.extra += ["-o", "pos_tls_cert_file=" + kek,
                "-o", "pos_tls_key_file=" + kek]
    try:
        s.start(timeout=10)
        raise AssertionError("sokod started with a bad certificate")
    except AssertionError as e:
        assert "did not become ready" in str(e), e
    assert "tls_config_failed" in s.stderr_text(), s.stderr_text()


def t_pos_plain_transport(build):
    s = PosSokod(build)
    s.extra += ["-o", "pos_login_timeout_ms=700"]
    for a in ("A1", "A2"):
        s.ctl("account", "create", "agent:%s:float" % a, "agent_float", "KES")
        s.ctl("agent", "create", a, "agent:%s:float" % a)
    s.ctl("account", "create", "clearing:mpesa", "provider_clearing", "KES")
    kt = s.terminal_add("T1", "A1")
    s.start()
    try:
        st, _, data = s.move("fund", {"type": "float_topup",
                                      "currency": "KES", "amount": "10.00",
                                      "debit": "clearing:mpesa",
                                      "credit": "agent:A1:float"})
        assert st == 201, data
        # silent: closed at the login deadline
        raw = socket.create_connection(("127.0.0.1", s.pos_port),
                                       timeout=10)
        t0 = time.monotonic()
        assert raw.recv(100) == b""
        assert 0.5 < time.monotonic() - t0 < 3
        raw.close()
        # a trickle (one byte every 100 ms) does not move the deadline
        raw = socket.create_connection(("127.0.0.1", s.pos_port),
                                       timeout=10)
        t0 = time.monotonic()
        closed = False
        for b in b"\x00\x50" + bytes(60):
            try:
                raw.sendall(bytes([b]))
            except OSError:
                closed = True
                break
            time.sleep(0.1)
            if time.monotonic() - t0 > 3:
                break
        if not closed:
            raw.settimeout(5)
            try:
                assert raw.recv(100) == b""
            except ConnectionResetError:
                pass
        assert time.monotonic() - t0 < 3.5
        raw.close()
        # LOGIN in two pieces, 200 ms apart
        t = s.term("T1", kt)
        cn = os.urandom(16)
        f = frame(LOGIN, 1, 0, {1: "T1", 2: cn, 3: "split"}, kt)
        t.send_raw(f[:7])
        time.sleep(0.2)
        t.send_raw(f[7:])
        typ, rid, _, body, _, _ = t.read_frame()
        assert typ == LOGIN_OK and rid == 1, (hex(typ), body)
        t.close()
        # several frames in one write; a transfer sent byte by byte
        t = s.term("T1", kt)
        assert t.login()[0] == LOGIN_OK
        many = b""
        for i in range(5):
            t.req += 1
            many += frame(ECHO, t.req, t.tx, {1: i}, t.ks)
            t.tx += 1
        t.send_raw(many)
        got = sorted(t.read_frame()[1] for _ in range(5))
        assert got == list(range(t.req - 4, t.req + 1)), got
        t.req += 1
        f = frame(FLOAT_TRANSFER, t.req, t.tx,
                  {1: os.urandom(16), 2: 100, 3: 404, 4: "A2"}, t.ks)
        t.tx += 1
        for b in f:
            t.send_raw(bytes([b]))
            time.sleep(0.001)
        typ, rid, _, body, _, _ = t.read_frame()
        assert typ == FLOAT_TRANSFER | RESP and body[1] == APPROVED, body
        t.close()
        assert s.balance("agent:A2:float") == "1.00"
    finally:
        s.stop()


def fleet_report(out):
    """Every key=value of a soko-pos fleet report."""
    return dict(p.split("=", 1) for ln in out.splitlines()
                for p in ln.split() if "=" in p)


def t_pos_tls_fleet(build):
    _, ca, other, opts = certs()
    s = FleetSokod(build)
    s.extra += opts
    try:
        prov = s.provision(50)
        s.start()
        common = ["fleet", "--server", "127.0.0.1:%d" % s.pos_port,
                  "--provision", prov, "--terminals", "50",
                  "--queue-dir", s.qdir, "--closed-loop", "4",
                  "--amount", "1.00", "--currency", "KES",
                  "--http", "127.0.0.1:%d" % s.port,
                  "--admin-key-file", s.keyfile]
        r = s.pos(*common, "--tls-ca", ca, "--count", "6000",
                  "--fund-from", "clearing:fleet", "--fund", "1000.00",
                  "--drop-every", "0.02", "--max-reconnect-ms", "200",
                  "--drain", "20")
        print(r.stdout.strip().replace("\n", "\n    "), flush=True)
        assert r.returncode == 0, (r.stdout, r.stderr[-2000:])
        assert "check ok" in r.stdout.splitlines(), r.stdout
        rep = fleet_report(r.stdout)
        assert rep["tls"] == "on", r.stdout
        assert int(rep.get("APPROVED", "0")) >= 6000, r.stdout
        assert int(rep["drops"]) > 0 and int(rep["reconnects"]) > 0, \
            r.stdout
        assert rep["tls_fail"] == "0" and rep["queue_left"] == "0", r.stdout
        floats = [s.balance("agent:A%04d:float" % i) for i in range(1, 51)]
        total = sum(float(b) for b in floats)
        assert abs(total - 50 * 1000.00) < 0.001, total
        # trusting another CA: no handshake completes, nothing moves
        r = s.pos(*common, "--tls-ca", other, "--duration", "1",
                  "--drain", "1")
        assert r.returncode != 0, r.stdout
        rep = fleet_report(r.stdout)
        assert int(rep["tls_fail"]) >= 50, r.stdout
        assert "APPROVED" not in rep, r.stdout
        assert "problem no terminal logged in" in r.stdout, r.stdout
        assert "certificate" in r.stderr, r.stderr[-2000:]
        assert [s.balance("agent:A%04d:float" % i)
                for i in range(1, 51)] == floats
        s.ctl("verify")
    finally:
        s.stop()
        s.cleanup_queues()


TESTS = [t_pos_tls_login_transfer, t_pos_tls_fleet, t_pos_tls_refusals, t_pos_tls_config,
         t_pos_plain_transport]
