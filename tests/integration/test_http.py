"""test_http.py - sokod's HTTP front: health, metrics, admin movements,
every documented error code, idempotency, limits race, graceful shutdown,
and configuration checking (docs/api.md, docs/configuration.md)."""
import concurrent.futures
import json
import os
import subprocess
import tempfile

from harness import WORKDIRS, Sokod

TOPUP = {"type": "float_topup", "currency": "KES", "amount": "100.00",
         "debit": "clearing:mpesa", "credit": "agent:A1:float"}


def setup(build, **kw):
    s = Sokod(build, **kw)
    s.ctl("account", "create", "clearing:mpesa", "provider_clearing", "KES")
    s.ctl("account", "create", "agent:A1:float", "agent_float", "KES")
    s.ctl("account", "create", "agent:A2:float", "agent_float", "KES")
    s.ctl("account", "create", "clearing:mtn-ug", "provider_clearing", "UGX")
    s.ctl("account", "create", "merchant:M1", "merchant_payable", "KES")
    return s.start()


def body(**over):
    b = dict(TOPUP)
    b.update(over)
    return b


def expect(resp, status, code=None):
    st, _, data = resp
    assert st == status, "want %d got %d: %s" % (status, st, data)
    if code is not None:
        got = json.loads(data).get("error")
        assert got == code, "want error %s got %s" % (code, got)


def t_health_metrics(build):
    s = setup(build)
    try:
        st, _, data = s.request("GET", "/healthz", auth=False)
        assert st == 200 and json.loads(data)["store"] == "sqlite", data
        st, h, data = s.request("GET", "/metrics", auth=False)
        text = data.decode()
        assert st == 200 and h["content-type"].startswith("text/plain")
        for m in ("soko_http_requests_total", "soko_store_commit_seconds_bucket",
                  "soko_store_commit_batch_size_bucket", "soko_dbq_depth"):
            assert m in text, m
        expect(s.request("GET", "/nope"), 404, "not_found")
    finally:
        s.stop()


def t_movement_and_replay(build):
    s = setup(build)
    try:
        r1 = s.move("k-1", body())
        expect(r1, 201)
        doc = json.loads(r1[2])
        assert doc["txn_id"] > 0 and doc["amount"] == "100.00", doc
        r2 = s.move("k-1", body())
        expect(r2, 201)
        assert r2[2] == r1[2], "replay body differs"
        assert r2[1].get("idempotent-replayed") == "true"
        expect(s.move("k-1", body(amount="100.01")), 409,
               "idempotency_key_mismatch")
        assert s.balance("agent:A1:float") == "100.00"
        assert s.balance("clearing:mpesa") == "-100.00"
        # a declined first request is replayed as the same decline
        adj = body(type="adjustment", debit="agent:A1:float",
                   credit="merchant:M1", amount="500.00")
        expect(s.move("k-2", adj), 422, "insufficient_funds")
        s.move("k-3", body(amount="1000.00"))
        expect(s.move("k-2", adj), 422, "insufficient_funds")
        assert s.balance("merchant:M1") == "0.00"
        s.ctl("verify")
    finally:
        s.stop()


def t_bad_input(build):
    s = setup(build)
    cases = [
        (body(amount="0"), 422, "amount_zero"),
        (body(amount="0.00"), 422, "amount_zero"),
        (body(amount="-5.00"), 422, "amount_negative"),
        (body(amount="10000000000000.01"), 422, "amount_too_large"),
        (body(amount="99999999999999999999"), 422, "amount_too_large"),
        (body(amount="1.001"), 422, "amount_precision"),
        (body(amount="1e3"), 400, "amount_bad_format"),
        (body(amount="abc"), 400, "amount_bad_format"),
        (body(amount=100), 400, "field_type"),
        (body(amount=1.5), 400, "field_type"),
        (body(currency="XXX"), 422, "currency_unknown"),
        (body(currency="UGX", amount="100"), 422, "currency_mismatch"),
        (body(credit="agent:NOPE:float"), 422, "account_unknown"),
        (body(debit="agent:A1:float"), 422, "same_account"),
        (body(credit="merchant:M1"), 422, "account_type_invalid"),
        (body(type="teleport"), 422, "type_unknown"),
        (body(extra="x"), 400, "field_unknown"),
        (body(memo="x" * 200), 400, "field_too_long"),
        (body(limits={"planet": "x"}), 400, "field_unknown"),
        ({"type": "float_topup"}, 400, "field_missing"),
        ("[1,2,3]", 400, "bad_json"),
        ("{\"type\": ", 400, "bad_json"),
        ('{"type":"adjustment","type":"float_topup"}', 400, "bad_json"),
        (b'{"type":"\xff\xfe"}', 400, "bad_json"),
        ("[" * 5000 + "]" * 5000, 400, "bad_json"),
        ("", 400, "bad_json"),
    ]
    try:
        for i, (b, st, code) in enumerate(cases):
            expect(s.move("bad-%d" % i, b), st, code)
        expect(s.move("", body()), 400, "idempotency_key_missing")
        expect(s.request("POST", "/v1/movements", json.dumps(body())), 400,
               "idempotency_key_missing")
        expect(s.move("k" * 101, body()), 400, "idempotency_key_invalid")
        expect(s.move("bad key!", body()), 400, "idempotency_key_invalid")
        expect(s.move("k-a", body(), auth=False), 401, "unauthorized")
        expect(s.request("POST", "/v1/movements", json.dumps(body()),
                         headers={"Idempotency-Key": "k-b",
                                  "Authorization": "Bearer wrong-key-0000"}),
               401, "unauthorized")
        expect(s.request("GET", "/v1/movements"), 405)
        st, _, _ = s.move("big", "x" * (70 * 1024))
        assert st == 413, st
        # nothing above changed anything
        assert s.balance("agent:A1:float") == "0.00"
        assert s.balance("clearing:mpesa") == "0.00"
        expect(s.request("GET", "/v1/accounts/none"), 404, "account_unknown")
        s.ctl("verify")
    finally:
        s.stop()


def t_limits_race(build):
    """20 parallel requests that together exceed a daily limit: the
    accepted total never exceeds it; the rest get limit_daily."""
    s = Sokod(build)
    s.ctl("account", "create", "clearing:mpesa", "provider_clearing", "KES")
    s.ctl("account", "create", "agent:A1:float", "agent_float", "KES")
    s.ctl("limit", "set", "agent", "A1", "KES", "--daily", "1000.00")
    s.start()
    try:
        def one(i):
            return s.move("race-%d" % i, body(amount="100.00",
                                              limits={"agent": "A1"}))
        with concurrent.futures.ThreadPoolExecutor(20) as ex:
            res = list(ex.map(one, range(20)))
        ok = [r for r in res if r[0] == 201]
        for r in res:
            if r[0] != 201:
                expect(r, 422, "limit_daily")
        assert len(ok) == 10, len(ok)
        assert s.balance("agent:A1:float") == "1000.00"
        s.ctl("verify")
    finally:
        s.stop()


def t_graceful_shutdown(build):
    """SIGTERM while requests are in flight: every request gets an answer,
    every 201 is committed, exit 0."""
    s = setup(build)
    acked = []
    try:
        def one(i):
            r = s.move("gs-%d" % i, body(amount="1.00"))
            if r[0] == 201:
                acked.append(i)
            return r[0]
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            futs = [ex.submit(one, i) for i in range(400)]
            while len(acked) < 50:
                pass
            s.stop()
            codes = []
            for f in futs:
                try:
                    codes.append(f.result(timeout=30))
                except OSError:
                    codes.append("refused")
        assert set(codes) <= {201, 503, "refused"}, set(codes)
    finally:
        if s.proc.poll() is None:
            s.stop()
    out = s.ctl("balances").stdout
    line = [l for l in out.splitlines() if "agent:A1:float" in l][0]
    assert line.split()[4] == "%d.00" % len(acked), (line, len(acked))
    s.ctl("verify")


def t_config_check(build):
    d = tempfile.mkdtemp(prefix="soko-cfg-")
    WORKDIRS.append(d)
    sokod = os.path.join(build, "sokod")

    def check(text):
        p = os.path.join(d, "c.conf")
        with open(p, "w") as f:
            f.write(text)
        return subprocess.run([sokod, "-t", "-c", p], capture_output=True,
                              text=True, timeout=30)
    r = check("# ok\nstore = sqlite:/tmp/x.db\nhttp_listen = 127.0.0.1:0\n")
    assert r.returncode == 0, r.stderr
    for text, frag in [
            ("store = sqlite:x\nbogus = 1\n", "c.conf:2: unknown key \"bogus\""),
            ("dbq_batch_max = 0\n", "c.conf:1: 0 is out of range 1..100000"),
            ("http_timeout_ms = abc\n", "c.conf:1: \"abc\" is not an integer"),
            ("log_redact_msisdn = maybe\n", "c.conf:1: \"maybe\" is not a boolean"),
            ("store = mysql://x\n", "store: \"mysql://x\" is not"),
            ("http_listen = 127.0.0.1\n", "http_listen:"),
            ("log_level = loud\n", "log_level: bad log level"),
            ("store\n", "c.conf:1: expected key = value"),
            ("store = \"sqlite:x\n", "c.conf:1: unterminated quoted value"),
            ("idempotency_retention_days = 7\n", "out of range 30..3650")]:
        r = check(text)
        assert r.returncode != 0 and frag in r.stderr, (text, r.stderr)
    r = subprocess.run([sokod, "-t", "-o", "http_max_body=1"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "out of range" in r.stderr, r.stderr
    r = subprocess.run([sokod, "--help-config"], capture_output=True,
                       text=True, timeout=30)
    assert "dbq_batch_max" in r.stdout and "http_listen" in r.stdout


TESTS = [t_health_metrics, t_movement_and_replay, t_bad_input,
         t_limits_race, t_graceful_shutdown, t_config_check]
