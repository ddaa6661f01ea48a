"""harness.py - start the real sokod over real sockets for integration tests.

Python 3 standard library only.  sokod starts on port 0 and prints its
readiness line ("sokod ready http=127.0.0.1:PORT ..."), so nothing sleeps
waiting for it.  Every wait has a timeout.  stop() sends SIGTERM and checks
a clean exit and a sanitizer-free stderr.
"""
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

API_KEY = "test-admin-key-0123456789abcdef"
SAN_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
               "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer")


WORKDIRS = []  # every temporary directory a Sokod made


def cleanup():
    """Removes the temporary directories (run.py calls it when every test
    passed; after a failure they stay for inspection, and always with
    SOKO_IT_KEEP=1)."""
    if os.environ.get("SOKO_IT_KEEP") == "1":
        return
    for d in WORKDIRS:
        shutil.rmtree(d, ignore_errors=True)
    del WORKDIRS[:]


def fresh_pg():
    """An empty schema in the throwaway PostgreSQL of tests/pg.sh (each
    test starts from nothing, as with a new SQLite file); its conninfo."""
    conninfo = os.environ["SOKO_TEST_PG"]
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", conninfo, "-c",
                    "DROP SCHEMA public CASCADE; CREATE SCHEMA public"],
                   check=True, capture_output=True, timeout=60)
    return conninfo


class Sokod:
    """One sokod process with its own temporary directory and database."""

    def __init__(self, build, workdir=None, store=None, binary="sokod",
                 extra=(), env=None):
        self.build = build
        if workdir is None:
            workdir = tempfile.mkdtemp(prefix="soko-it-")
            WORKDIRS.append(workdir)
        self.dir = workdir
        if store is None and os.environ.get("SOKO_IT_STORE") == "pg":
            store = "pg:" + fresh_pg()
        self.store = store or "sqlite:%s/soko.db" % self.dir
        self.binary = os.path.join(build, binary)
        self.extra = list(extra)
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.env["SOKO_ADMIN_API_KEY"] = API_KEY
        self.proc = None
        self.port = None
        self.pos_port = None
        self.stderr_path = os.path.join(self.dir, "sokod.stderr")
        self.stderr_f = None

    def ctl(self, *args, check=True):
        """Runs sokoctl against this instance's store; returns stdout."""
        r = subprocess.run([os.path.join(self.build, "sokoctl"), "-s",
                            self.store] + list(args), capture_output=True,
                           text=True, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError("sokoctl %s failed: %s%s" %
                                 (" ".join(args), r.stdout, r.stderr))
        return r

    def start(self, timeout=20):
        self.stderr_f = open(self.stderr_path, "ab")
        cmd = [self.binary, "-o", "store=" + self.store,
               "-o", "http_listen=127.0.0.1:0"] + self.extra
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                     stderr=self.stderr_f, env=self.env)
        line = [None]

        def reader():
            line[0] = self.proc.stdout.readline().decode()

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        t.join(timeout)
        if not line[0] or "sokod ready" not in line[0]:
            self.proc.kill()
            raise AssertionError("sokod did not become ready: %r\n%s" %
                                 (line[0], self.stderr_text()))
        for part in line[0].split():
            if part.startswith("http="):
                self.port = int(part.rsplit(":", 1)[1])
            if part.startswith("pos="):  # with pos_listen set
                self.pos_port = int(part.rsplit(":", 1)[1])
        return self

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=20)
        self.proc.stdout.close()
        self.stderr_f.close()

    def stop(self, timeout=30):
        """SIGTERM; asserts exit 0 and no sanitizer report."""
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        self.proc.stdout.close()
        self.stderr_f.close()
        err = self.stderr_text()
        for m in SAN_MARKERS:
            if m in err:
                raise AssertionError("sanitizer report in sokod stderr:\n" +
                                     err[-4000:])
        if rc != 0:
            raise AssertionError("sokod exited %d\n%s" % (rc, err[-2000:]))
        return err

    def request(self, method, path, body=None, headers=None, auth=True,
                timeout=30):
        """One HTTP request on a new connection: (status, headers, body)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port,
                                       timeout=timeout)
        h = dict(headers or {})
        if auth:
            h.setdefault("Authorization", "Bearer " + API_KEY)
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        return r.status, hdrs, data

    def move(self, key, body, **kw):
        h = {"Idempotency-Key": key, "Content-Type": "application/json"}
        return self.request("POST", "/v1/movements", body, headers=h, **kw)

    def balance(self, code):
        st, _, data = self.request("GET", "/v1/accounts/" + code)
        assert st == 200, (st, data)
        return json.loads(data)["balance"]


class Suite:
    """Runs test functions; prints 'NAME: N passed, N failed'."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def run(self, fn, *args):
        t0 = time.time()
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - report every failure
            self.failed += 1
            print("not ok %s (%.1fs): %s: %s" % (fn.__name__,
                  time.time() - t0, type(e).__name__, e), flush=True)
            return False
        self.passed += 1
        print("ok %s (%.1fs)" % (fn.__name__, time.time() - t0), flush=True)
        return True

    def report(self):
        print("%s: %d passed, %d failed" % (self.name, self.passed,
                                            self.failed), flush=True)
        return self.failed == 0


def free_port():
    """A port free right now on 127.0.0.1 (for a URL that must name a
    port before the server starts: provider callback URLs)."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Sandbox:
    """soko-sandbox: the providers on loopback over HTTPS, with its own
    test CA (tests/sandbox/README.md)."""

    def __init__(self, build, workdir=None, extra=()):
        if workdir is None:
            workdir = tempfile.mkdtemp(prefix="soko-sb-")
            WORKDIRS.append(workdir)
        self.dir = workdir
        self.tls = os.path.join(workdir, "tls")
        self.binary = os.path.join(build, "soko-sandbox")
        self.extra = list(extra)
        self.proc = None
        self.port = self.ctl_port = None
        self.stderr_path = os.path.join(workdir, "sandbox.stderr")

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
        if not line[0] or "soko-sandbox ready" not in line[0]:
            self.proc.kill()
            raise AssertionError("soko-sandbox did not become ready: %r"
                                 % line[0])
        for part in line[0].split():
            if part.startswith("https="):
                self.port = int(part.rsplit(":", 1)[1])
            if part.startswith("ctl="):
                self.ctl_port = int(part.rsplit(":", 1)[1])
        return self

    @property
    def ca(self):
        return os.path.join(self.tls, "ca.pem")

    @property
    def base(self):
        return "https://127.0.0.1:%d" % self.port

    def ctl(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.ctl_port,
                                       timeout=30)
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        c.request(method, path, body=body,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        c.close()
        assert r.status < 300, (method, path, r.status, data)
        return json.loads(data) if data else None

    def faults(self, rules):
        self.ctl("DELETE", "/faults")
        if rules:
            self.ctl("POST", "/faults", {"rules": rules})

    def ledger(self):
        return self.ctl("GET", "/ledger")

    def stop(self):
        if self.proc is None:
            return ""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.stderr_f.close()
        with open(self.stderr_path, "rb") as f:
            err = f.read().decode(errors="replace")
        for m in SAN_MARKERS:
            if m in err:
                raise AssertionError("sanitizer report in sandbox stderr:\n"
                                     + err[-4000:])
        return err


# The sandbox's documented test credentials (tests/sandbox/README.md)
MPESA_ENV = {
    "SOKO_MPESA_CONSUMER_KEY": "CdmNbdt0iBN1oqDfKasm4dabdpKmtaNn",
    "SOKO_MPESA_CONSUMER_SECRET": "DLKG7PBun720GZim",
    "SOKO_MPESA_PASSKEY": "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78"
                          "e6b72ada1ed2c919",
}
MOMO_ENV = {
    "SOKO_MOMO_API_KEY": "1e89774dabd944b4b112c30aaef5b9c8",
    "SOKO_MOMO_SUBSCRIPTION_KEY": "a3c9e1f2b4d64e7f8a9b0c1d2e3f4a5b",
}
MOMO_USER = "f4d5b7a0-5c1e-4b8e-9d3a-2b6c8e1f0a91"
FINAL = ("succeeded", "failed", "unknown", "reversed")


class ProvEnv:
    """A soko-sandbox and a sokod pointed at it over HTTPS (the sandbox's
    CA trusted, nothing unverified), on a port fixed before start so the
    callback URLs can name it.  options: sokod keys (the janitor runs
    fast, deadlines are short; a value None is the sandbox's base URL, a
    callable is called with the started Sandbox);
    env: secrets; accounts: sokoctl account create argument lists, made
    before start; "{sokod}" in sandbox_extra is sokod's base URL (webhook
    targets)."""

    def __init__(self, build, options=(), env=None, accounts=(),
                 sandbox_extra=("--callback-delay-ms", "100"),
                 deadline_s=30, timeout_ms=3000):
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port  # sokod, as called
        self.sb = Sandbox(build, extra=[
            a.replace("{sokod}", self.base) for a in sandbox_extra
        ]).start()
        self.token = os.urandom(24).hex()  # callback URL tokens
        e = {"SOKO_MPESA_CALLBACK_TOKEN": self.token,
             "SOKO_MOMO_CALLBACK_TOKEN": self.token[::-1]}
        e.update(env or {})
        base = (("http_listen", "127.0.0.1:%d" % self.port),
                ("prov_ca_file", self.sb.ca),
                ("prov_callback_base_url", self.base),
                ("prov_janitor_ms", "50"),
                ("prov_first_check_ms", "3000"),
                ("prov_check_every_ms", "300"),
                ("prov_max_checks", "20"),
                ("prov_deadline_s", str(deadline_s)),
                ("prov_timeout_ms", str(timeout_ms)),
                ("prov_lease_ms", "5000"))
        o = []
        for k, v in base + tuple(options):  # later keys win
            if v is None:
                v = self.sb.base
            elif callable(v):  # of the started sandbox: a file it made
                v = v(self.sb)
            o += ["-o", "%s=%s" % (k, v)]
        self.s = Sokod(build, extra=o, env=e)
        for a in accounts:
            self.s.ctl("account", "create", *a)
        self.s.start()

    def payment(self, ref, path="/v1/payments/"):
        st, _, data = self.s.request("GET", path + ref)
        assert st == 200, (st, data)
        return json.loads(data)

    def wait_final(self, ref, timeout=30, path="/v1/payments/"):
        end = time.time() + timeout
        while True:
            p = self.payment(ref, path)
            if p["state"] in FINAL or time.time() > end:
                return p
            time.sleep(0.05)

    def charges(self, client_ref):
        return [c for c in self.sb.ledger()["charges"]
                if c["client_ref"] == client_ref]

    def verify(self):
        r = self.s.ctl("verify", check=False)
        assert r.returncode == 0, r.stdout + r.stderr

    def stop(self):
        try:
            self.s.stop()
        finally:
            self.sb.stop()
