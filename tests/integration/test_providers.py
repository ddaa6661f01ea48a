"""test_providers.py - payments through providers, end to end: sokod and
soko-sandbox over real HTTPS on loopback (sandbox's own test CA, never
verification off).  M-Pesa STK collections: success, customer failure,
idempotency, bad requests, forged and malformed callbacks, and every
sandbox fault kind, each checked against the sandbox's own ledger of
charges (docs/payments.md)."""
import concurrent.futures
import http.client
import json
import os
import random
import time


from harness import (FINAL, MOMO_ENV, MOMO_USER, MPESA_ENV,  # noqa: F401
                     ProvEnv)

MOMO_OK = "46733123459"
MOMO_NO_FUNDS = "46733123456"  # sandbox magic: FAILED NOT_ENOUGH_FUNDS
OK_MSISDN = "254708374149"
CANCEL_MSISDN = "254700001032"  # sandbox magic: ResultCode 1032


class Env(ProvEnv):
    """A sandbox and a sokod collecting through M-Pesa and MoMo."""

    def __init__(self, build, deadline_s=30, timeout_ms=3000, extra=()):
        env = dict(MPESA_ENV)
        env.update(MOMO_ENV)
        super().__init__(
            build, deadline_s=deadline_s, timeout_ms=timeout_ms, env=env,
            options=(("mpesa_base_url", None), ("momo_base_url", None),
                     ("momo_api_user", MOMO_USER)) + tuple(extra),
            accounts=(("clearing:mpesa", "provider_clearing", "KES"),
                      ("merchant:M1", "merchant_payable", "KES"),
                      ("agent:A1:float", "agent_float", "KES"),
                      ("clearing:momo", "provider_clearing", "EUR"),
                      ("merchant:M2", "merchant_payable", "EUR")))

    def collect(self, key, msisdn=OK_MSISDN, amount="150.00", **over):
        b = {"provider": "mpesa", "msisdn": msisdn, "amount": amount,
             "currency": "KES", "account": "merchant:M1"}
        b.update(over)
        return self.s.request("POST", "/v1/collections", b,
                              headers={"Idempotency-Key": key})

    def collect_momo(self, key, msisdn=MOMO_OK, amount="25.50", **over):
        b = {"provider": "momo", "msisdn": msisdn, "amount": amount,
             "currency": "EUR", "account": "merchant:M2"}
        b.update(over)
        return self.s.request("POST", "/v1/collections", b,
                              headers={"Idempotency-Key": key})

    def callback(self, body, token=None):
        return self.s.request(
            "POST", "/v1/callbacks/mpesa/stk/" + (token or self.token),
            body, auth=False, headers={"Content-Type": "application/json"})


def created(resp):
    st, _, data = resp
    assert st == 202, (st, data)
    return json.loads(data)


def expect(resp, status, code=None):
    st, _, data = resp
    assert st == status, "want %d got %d: %s" % (status, st, data)
    if code is not None:
        assert json.loads(data).get("error") == code, data


def t_mpesa_collection_success(build):
    e = Env(build)
    try:
        p = created(e.collect("c-ok-1"))
        assert p["state"] == "created" and p["ref"] == "col:c-ok-1", p
        f = e.wait_final(p["ref"])
        assert f["state"] == "succeeded", f
        assert f["receipt"] and f["provider_reference"], f
        assert f["txn_id"] > 0, f
        assert e.s.balance("merchant:M1") == "150.00"
        assert e.s.balance("clearing:mpesa") == "-150.00"
        ch = e.charges(f["reference"])
        assert len(ch) == 1 and ch[0]["state"] == "succeeded", ch
        e.verify()
    finally:
        e.stop()


def t_mpesa_collection_cancelled(build):
    e = Env(build)
    try:
        p = created(e.collect("c-cancel", msisdn=CANCEL_MSISDN))
        f = e.wait_final(p["ref"])
        assert f["state"] == "failed" and f["result_code"] == "1032", f
        assert e.s.balance("merchant:M1") == "0.00"
        assert all(c["state"] != "succeeded"
                   for c in e.charges(f["reference"]))
    finally:
        e.stop()


def t_mpesa_idempotency_and_errors(build):
    e = Env(build)
    try:
        p = created(e.collect("c-idem"))
        st, h, data = e.collect("c-idem")
        assert st == 200 and h.get("idempotent-replayed") == "true", data
        assert json.loads(data)["ref"] == p["ref"]
        expect(e.collect("c-idem", amount="200.00"), 409,
               "idempotency_key_mismatch")
        expect(e.collect("c-e1", msisdn="07x"), 422, "msisdn_invalid")
        expect(e.collect("c-e2", amount="150.50"), 422,
               "amount_invalid_for_provider")
        expect(e.collect("c-e3", currency="UGX", amount="150"), 422,
               "amount_invalid_for_provider")
        expect(e.collect("c-e4", account="merchant:nope"), 422,
               "account_unknown")
        expect(e.collect("c-e5", account="agent:A1:float"), 422,
               "account_type")
        expect(e.collect("c-e6", provider="mtn"), 422, "provider_unknown")
        expect(e.collect("c-e7", reference="way-too-long-ref"), 422,
               "reference_invalid")
        expect(e.collect("c-e8", amount="0"), 422, "amount_zero")
        expect(e.s.request("POST", "/v1/collections", "{}",
                           headers={"Idempotency-Key": "x"}), 400,
               "field_missing")
        expect(e.s.request("POST", "/v1/collections", "{\"a\":1,\"a\":2}",
                           headers={"Idempotency-Key": "x"}), 400,
               "bad_json")
        expect(e.s.request("POST", "/v1/collections", "{}", auth=False,
                           headers={"Idempotency-Key": "x"}), 401,
               "unauthorized")
        expect(e.s.request("GET", "/v1/payments/col:none"), 404,
               "payment_unknown")
        assert e.wait_final(p["ref"])["state"] == "succeeded"
    finally:
        e.stop()


def stk_cb(checkout, code=0, amount=150, receipt="SBX0000001"):
    cb = {"MerchantRequestID": "m-1", "CheckoutRequestID": checkout,
          "ResultCode": code, "ResultDesc": "x"}
    if code == 0:
        cb["CallbackMetadata"] = {"Item": [
            {"Name": "Amount", "Value": amount},
            {"Name": "MpesaReceiptNumber", "Value": receipt},
            {"Name": "TransactionDate", "Value": 20241201120000},
            {"Name": "PhoneNumber", "Value": 254708374149}]}
    return {"Body": {"stkCallback": cb}}


def t_mpesa_forged_callbacks(build):
    e = Env(build)
    try:
        p = created(e.collect("c-forge"))
        f = e.wait_final(p["ref"])
        assert f["state"] == "succeeded", f
        before = (e.s.balance("merchant:M1"), e.s.balance("clearing:mpesa"))
        good = stk_cb(f["provider_reference"])
        # wrong token: looks like no endpoint at all
        expect(e.callback(good, token="0" * 48), 404, "not_found")
        expect(e.callback(good, token="short"), 404, "not_found")
        # malformed bodies: specific 400s
        expect(e.callback("{"), 400, "callback_invalid_json")
        expect(e.callback("{\"Body\":1,\"Body\":2}"), 400,
               "callback_invalid_json")
        expect(e.callback("[" * 100 + "]" * 100), 400,
               "callback_invalid_json")
        expect(e.callback(b"{\"Body\":\"\xff\"}"), 400,
               "callback_invalid_json")
        expect(e.callback({"Body": {}}), 400, "callback_field_missing")
        bad = stk_cb(f["provider_reference"])
        bad["Body"]["stkCallback"]["ResultCode"] = [0]
        expect(e.callback(bad), 400, "callback_field_type")
        # unknown reference, altered amount
        expect(e.callback(stk_cb("ws_CO_unknown")), 404, "payment_unknown")
        expect(e.callback(stk_cb(f["provider_reference"], amount=1)), 422,
               "amount_mismatch")
        # a contradicting callback on a final payment: recorded, 200,
        # nothing moves
        expect(e.callback(stk_cb(f["provider_reference"], code=1032)), 200)
        expect(e.callback(good), 200)  # duplicate
        after = (e.s.balance("merchant:M1"), e.s.balance("clearing:mpesa"))
        assert before == after, (before, after)
        assert e.payment(p["ref"])["state"] == "succeeded"
        st, _, m = e.s.request("GET", "/metrics", auth=False)
        text = m.decode()
        assert "soko_provider_callbacks_rejected_total" in text
        e.verify()
    finally:
        e.stop()


# Each sandbox fault on the STK push (or its callback), and what the
# payment must end as.  "answer lost" cases cannot be queried (no
# CheckoutRequestID came back): they end unknown, for reconciliation,
# never failed while the customer was charged, never pushed twice.
FAULTS = [
    ({"op": "stkpush", "fault": "delay", "ms": 300}, "succeeded"),
    ({"op": "stkpush", "fault": "no_callback"}, "succeeded"),
    ({"op": "stkpush", "fault": "callback_twice"}, "succeeded"),
    ({"op": "stkpush", "fault": "callback_before_response"}, "succeeded"),
    ({"op": "stkpush", "fault": "contradicting_callback"}, "succeeded"),
    ({"op": "*", "fault": "expired_token"}, "succeeded"),
    ({"op": "stkpush", "fault": "reset_after_commit"}, "unknown"),
    ({"op": "stkpush", "fault": "error500_after_commit"}, "unknown"),
    ({"op": "stkpush", "fault": "timeout"}, "unknown"),
]


def t_mpesa_faults(build):
    e = Env(build, deadline_s=6, timeout_ms=1500)
    try:
        # one customer per fault kind, all at once (rules match by MSISDN)
        rules, pays = [], []
        for i, (rule, want) in enumerate(FAULTS):
            msisdn = "2547083741%02d" % (50 + i)
            rules.append(dict(rule, provider="mpesa", rate=1.0, count=1,
                              msisdn=msisdn))
        e.sb.faults(rules)
        for i, (rule, want) in enumerate(FAULTS):
            pays.append(created(e.collect("c-fault-%d" % i,
                                          msisdn="2547083741%02d" % (50 + i))))
        refs = [(rule["fault"], want, e.wait_final(p["ref"], timeout=20))
                for (rule, want), p in zip(FAULTS, pays)]
        total = 0
        for fault, want, f in refs:
            assert f["state"] == want, (fault, f)
            ch = e.charges(f["reference"])
            taken = [c for c in ch if c["state"] == "succeeded"]
            # never pushed twice, never charged twice
            assert len(ch) <= 1 and len(taken) <= 1, (fault, ch)
            if want == "succeeded":
                assert len(taken) == 1, (fault, ch)
                total += 150
            else:
                # soko does not know; the sandbox's charge is what
                # reconciliation will find
                assert f["txn_id"] == 0, (fault, f)
        assert e.s.balance("merchant:M1") == "%d.00" % total
        e.verify()
    finally:
        e.stop()


def t_momo_collection(build):
    e = Env(build)
    try:
        ok = created(e.collect_momo("m-ok"))
        poor = created(e.collect_momo("m-poor", msisdn=MOMO_NO_FUNDS))
        expect(e.collect_momo("m-kes", amount="10.00", currency="KES",
                              account="merchant:M1"), 422,
               "amount_invalid_for_provider")
        f = e.wait_final(ok["ref"])
        assert f["state"] == "succeeded" and f["receipt"], f
        assert len(f["reference"]) == 36, f  # our UUID X-Reference-Id
        g = e.wait_final(poor["ref"])
        assert g["state"] == "failed", g
        assert g["result_code"] == "NOT_ENOUGH_FUNDS", g
        assert e.s.balance("merchant:M2") == "25.50"
        assert e.s.balance("clearing:momo") == "-25.50"
        ch = e.charges(f["reference"])
        assert [c["state"] for c in ch] == ["succeeded"], ch
        # a forged callback: unknown reference, wrong token
        body = {"financialTransactionId": "1", "externalId": "nope",
                "amount": "25.50", "currency": "EUR",
                "payer": {"partyIdType": "MSISDN", "partyId": MOMO_OK},
                "status": "SUCCESSFUL"}
        expect(e.s.request("POST", "/v1/callbacks/momo/" + e.token[::-1],
                           body, auth=False), 404, "payment_unknown")
        expect(e.s.request("PUT", "/v1/callbacks/momo/" + e.token,
                           body, auth=False), 404, "not_found")
        e.verify()
    finally:
        e.stop()


# MoMo is queried by our own id, so a lost answer is resolved, never left
# unknown: every fault ends in the sandbox's truth.
MOMO_FAULTS = ["delay", "no_callback", "callback_twice",
               "callback_before_response", "contradicting_callback",
               "reset_after_commit", "error500_after_commit", "timeout",
               "expired_token"]


def t_momo_faults(build):
    e = Env(build, deadline_s=20, timeout_ms=1500)
    try:
        rules, pays = [], []
        for i, fault in enumerate(MOMO_FAULTS):
            msisdn = "4673312%04d" % (7000 + i)
            r = {"provider": "momo", "op": "*" if fault == "expired_token"
                 else "requesttopay", "fault": fault, "rate": 1.0,
                 "count": 1, "msisdn": msisdn}
            if fault == "delay":
                r["ms"] = 300
            rules.append(r)
        e.sb.faults(rules)
        for i, fault in enumerate(MOMO_FAULTS):
            pays.append(created(e.collect_momo(
                "m-fault-%d" % i, msisdn="4673312%04d" % (7000 + i))))
        total = 0
        for fault, p in zip(MOMO_FAULTS, pays):
            f = e.wait_final(p["ref"], timeout=25)
            ch = e.charges(f["reference"])
            taken = [c for c in ch if c["state"] == "succeeded"]
            assert len(taken) <= 1, (fault, ch)
            assert f["state"] == "succeeded", (fault, f, ch)
            assert len(taken) == 1, (fault, ch)
            total += 2550
        assert e.s.balance("merchant:M2") == "%d.%02d" % (total // 100,
                                                          total % 100)
        e.verify()
    finally:
        e.stop()


def malformed_bodies(n, seed=4):
    """n callback bodies that must all be refused: invalid JSON, deep
    nesting, duplicate keys, wrong types, amounts as strings, invalid
    UTF-8, truncations and byte flips of a valid body, random bytes."""
    rng = random.Random(seed)
    good = json.dumps(stk_cb("ws_CO_x")).encode()
    momo = json.dumps({"financialTransactionId": "1", "externalId": "e",
                       "amount": "1", "currency": "EUR",
                       "payer": {"partyIdType": "MSISDN", "partyId": "1"},
                       "status": "SUCCESSFUL"}).encode()
    fixed = [b"", b"{", b"}", b"[]", b"null", b"1", b'"x"', b"{}",
             b"[" * 5000 + b"]" * 5000, b'{"a":' * 40 + b"1" + b"}" * 40,
             b'{"Body":{},"Body":{}}', b'{"Body":{"stkCallback":[]}}',
             b'{"Body":{"stkCallback":{"ResultCode":"0x"}}}',
             b"\xff\xfe{}", b'{"Body":"\xc0\xaf"}', b'{"a":"\ud800"}',
             b'{"Body":{"stkCallback":{"MerchantRequestID":1}}}',
             good.replace(b"150", b'"150"'), good.replace(b"150", b"-150"),
             good.replace(b"150", b"1.5e400"), good + b"x",
             momo.replace(b'"1"', b"1", 1), momo.replace(b"SUCCESSFUL",
                                                         b"MAYBE")]
    out = []
    for i in range(n):
        k = i % 6
        if i < len(fixed):
            b = fixed[i]
        elif k == 0:
            base = good if rng.random() < 0.5 else momo
            b = base[:rng.randrange(len(base))]
        elif k == 1:
            base = bytearray(good if rng.random() < 0.5 else momo)
            for _ in range(rng.randrange(1, 4)):
                base[rng.randrange(len(base))] = rng.randrange(256)
            b = bytes(base)
        elif k == 2:
            b = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        elif k == 3:
            d = rng.randrange(33, 400)
            b = b'{"Body":' * d + b"{}" + b"}" * d
        elif k == 4:
            b = good.replace(b'"ResultCode": 0', b'"ResultCode": %s' %
                             rng.choice([b'"zero"', b"[]", b"{}", b"null",
                                         b"true", b"0.5"]))
        else:
            b = good.replace(b"{", b'{"dup": 1, "dup": 2, ', 1)
        out.append(b)
    return out


def t_callbacks_malformed(build):
    """10,000 malformed callback bodies to the M-Pesa and MoMo callback
    endpoints: each gets a specific 4xx, sokod never crashes, nothing
    moves."""
    e = Env(build)
    try:
        p = created(e.collect("c-before"))
        assert e.wait_final(p["ref"])["state"] == "succeeded"
        before = (e.s.balance("merchant:M1"), e.s.balance("clearing:mpesa"))
        n = int(os.environ.get("SOKO_MALFORMED_N", "10000"))
        allowed = {"callback_invalid_json", "callback_field_missing",
                   "callback_field_type", "callback_field_invalid",
                   "payment_unknown", "amount_mismatch"}
        paths = ["/v1/callbacks/mpesa/stk/" + e.token,
                 "/v1/callbacks/momo/" + e.token[::-1]]
        c = http.client.HTTPConnection("127.0.0.1", e.s.port, timeout=30)
        codes = {}
        for i, body in enumerate(malformed_bodies(n)):
            c.request("POST", paths[i % 2], body=body,
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            assert 400 <= r.status < 500, (i, body[:80], r.status, data)
            code = json.loads(data).get("error")
            assert code in allowed, (i, body[:80], data)
            codes[code] = codes.get(code, 0) + 1
            if r.getheader("Connection", "").lower() == "close":
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", e.s.port,
                                               timeout=30)
        c.close()
        after = (e.s.balance("merchant:M1"), e.s.balance("clearing:mpesa"))
        assert before == after, (before, after)
        st, _, _ = e.s.request("GET", "/healthz", auth=False)
        assert st == 200
        e.verify()
        print("# malformed callbacks: %d bodies, %s" % (
            n, ", ".join("%s %d" % kv for kv in sorted(codes.items()))),
            flush=True)
    finally:
        e.stop()


ALL_FAULTS = ["delay", "timeout", "reset_after_commit", "error500_after_commit",
              "no_callback", "callback_twice", "callback_before_response",
              "contradicting_callback", "expired_token"]


def t_provider_battery(build):
    """The ambiguous-outcome battery: 1,000 collections (500 M-Pesa, 500
    MoMo), every fault kind injected into 20% of the provider calls of
    every operation (token, initiate, status) at once, customers who pay
    and customers who fail.  Then: no double charge, no lost charge (the
    sandbox's ledger and soko's agree; the only payments soko does not
    know are M-Pesa pushes whose answer was lost, and they are unknown,
    for reconciliation), nothing left pending, the ledger verifies."""
    n = int(os.environ.get("SOKO_BATTERY_N", "1000"))
    e = Env(build, deadline_s=30, timeout_ms=1500,
            extra=(("prov_max_checks", "40"), ("prov_batch", "512"),
                   ("log_level", os.environ.get("SOKO_BATTERY_LOG", "info")),
                   ("prov_first_check_ms", "1500"),
                   # a provider failing half its calls: the breaker (5
                   # failures in a row) would keep it shut for most of the
                   # run; the battery is about payments, not the breaker
                   ("prov_breaker_failures", "50"),
                   ("prov_breaker_open_ms", "500")))
    try:
        e.sb.faults([{"provider": "*", "op": "*", "fault": f, "rate": 0.2,
                      "ms": 200} for f in ALL_FAULTS])

        def one(i):
            if i % 2 == 0:  # M-Pesa: one in ten customers cancels
                msisdn = CANCEL_MSISDN if i % 20 == 0 else OK_MSISDN
                r = e.collect("b-%d" % i, msisdn=msisdn, amount="100.00")
            else:  # MoMo: one in ten has no funds
                msisdn = MOMO_NO_FUNDS if i % 20 == 1 else MOMO_OK
                r = e.collect_momo("b-%d" % i, msisdn=msisdn, amount="1.00")
            return created(r)["ref"]

        t0 = time.time()
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            refs = list(ex.map(one, range(n)))
        deadline = time.time() + 90
        pays = {}
        pending = set(refs)
        while pending and time.time() < deadline:
            for ref in list(pending):
                p = e.payment(ref)
                if p["state"] in FINAL:
                    pays[ref] = p
                    pending.discard(ref)
            if pending:
                time.sleep(0.5)
        assert not pending, "%d payments still open: %s" % (
            len(pending), sorted(pending)[:5])
        took = time.time() - t0
        e.sb.faults([])
        charges = {}
        for c in e.sb.ledger()["charges"]:
            charges.setdefault(c["client_ref"], []).append(c)
        states = {}
        unknown_charged = 0
        for ref, p in pays.items():
            states[(p["provider"], p["state"])] = states.get(
                (p["provider"], p["state"]), 0) + 1
            ch = charges.pop(p["reference"], [])
            taken = [c for c in ch if c["state"] == "succeeded"]
            assert len(taken) <= 1, ("double charge", p, ch)
            if p["provider"] == "mpesa":
                assert len(ch) <= 1, ("pushed twice", p, ch)
            if p["state"] == "succeeded":
                assert len(taken) == 1, ("no charge behind", p, ch)
            elif p["state"] == "failed":
                assert not taken, ("charged but failed", p, ch)
            else:
                # past the deadline: unknown, for reconciliation
                # (the sandbox's charge, if any, is what it will find)
                assert p["state"] == "unknown", p
                assert p["txn_id"] == 0, p
                unknown_charged += len(taken)
        assert not charges, ("charges soko never made", list(charges)[:3])
        ok_kes = states.get(("mpesa", "succeeded"), 0)
        ok_eur = states.get(("momo", "succeeded"), 0)
        assert e.s.balance("merchant:M1") == "%d.00" % (100 * ok_kes)
        assert e.s.balance("merchant:M2") == "%d.00" % ok_eur
        e.verify()
        st = e.sb.ctl("GET", "/stats")
        print("# battery: %d payments in %.1f s; %s; unknown with a "
              "sandbox charge (for reconciliation): %d; faults fired: %s"
              % (n, took, ", ".join("%s %s %d" % (k[0], k[1], v)
                                    for k, v in sorted(states.items())),
                 unknown_charged, st.get("faults", st)), flush=True)
    finally:
        e.stop()


TESTS = [t_mpesa_collection_success, t_mpesa_collection_cancelled,
         t_mpesa_idempotency_and_errors, t_mpesa_forged_callbacks,
         t_mpesa_faults, t_momo_collection, t_momo_faults,
         t_callbacks_malformed, t_provider_battery]
