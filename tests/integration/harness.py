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
