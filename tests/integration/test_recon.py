"""test_recon.py - reconciliation of unknown payments, end to end
(docs/payments.md §Reconciliation): sokod and soko-sandbox over HTTPS.

Payments are made unknown the way production makes them (a lost STK
push answer that cannot be queried, a B2C transfer that never
completes, a MoMo transfer whose status queries all fail until the
deadline), then listed, re-queried (the preferred first step: the MoMo
transfer settles from the provider's own answer once it can be asked)
and resolved by hand through the API and sokoctl, with the postings a
provider answer would have made, exactly once; a final state is never
flipped, and a later contradicting callback raises an alert and moves
nothing."""
import json
import time

import test_bills

from test_disbursements import (MOMO_OK, NEVER, NO_FUNDS, Env,
                                b2c_result, cents, created, expect)

STK_LOST = "254708374177"  # gets the stkpush "timeout" fault


def resolve(e, ref, key, body):
    return e.s.request("POST", "/v1/payments/%s/resolve" % ref, body,
                       headers={"Idempotency-Key": key} if key else None)


def metric(e, name):
    st, _, m = e.s.request("GET", "/metrics", auth=False)
    assert st == 200
    for line in m.decode().splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    raise AssertionError("no metric " + name)


def wait_call_done(e, ref, timeout=20):
    end = time.time() + timeout
    while True:
        p = e.payment(ref)
        if p["call"] == "done" or time.time() > end:
            return p
        time.sleep(0.05)


def t_recon(build):
    e = Env(build, deadline_s=5, timeout_ms=1500)
    try:
        e.fund("merchant:M1", "1000.00", "KES", "clearing:mpesa")
        e.fund("merchant:M2", "100.00", "EUR", "clearing:momo")
        # every MoMo transfer status query fails until the deadline
        e.sb.faults([
            {"provider": "mpesa", "op": "stkpush", "fault": "timeout",
             "msisdn": STK_LOST},
            {"provider": "momo", "op": "transfer_status",
             "fault": "error500_after_commit"}])
        ok = e.wait_final(created(e.disburse("r-ok"))["ref"])
        assert ok["state"] == "succeeded", ok
        coll = created(e.s.request(
            "POST", "/v1/collections",
            {"provider": "mpesa", "msisdn": STK_LOST, "amount": "150.00",
             "currency": "KES", "account": "merchant:M1"},
            headers={"Idempotency-Key": "r-coll"}))
        never = created(e.disburse("r-never", msisdn=NEVER,
                                   amount="200.00"))
        never2 = created(e.disburse("r-never2", msisdn=NEVER,
                                    amount="50.00"))
        momo = created(e.disburse("r-momo", "momo", MOMO_OK, "10.00",
                                  "EUR", "merchant:M2"))
        refs = [coll["ref"], never["ref"], never2["ref"], momo["ref"]]
        for r in refs:
            p = e.wait_final(r, timeout=25)
            assert p["state"] == "unknown", p
        # hold still there: 200 + 50 KES, 10 EUR
        assert e.bal("hold:mpesa") == 25000
        assert e.bal("hold:momo") == 1000
        assert e.bal("merchant:M1") == 100000 - 30000 - 25000

        # the list: unknown only, by id, bounded pages
        st, _, d = e.s.request("GET", "/v1/payments?state=unknown")
        assert st == 200, d
        lst = json.loads(d)
        assert [p["ref"] for p in lst["payments"]] == refs, lst
        assert lst["next_after"] is None
        st, _, d = e.s.request("GET",
                               "/v1/payments?state=unknown&limit=2")
        page = json.loads(d)
        assert [p["ref"] for p in page["payments"]] == refs[:2], page
        st, _, d = e.s.request(
            "GET", "/v1/payments?state=unknown&limit=2&after=%d"
            % page["next_after"])
        assert [p["ref"] for p in json.loads(d)["payments"]] == refs[2:]
        expect(e.s.request("GET", "/v1/payments?state=pending"), 422,
               "state_unsupported")
        expect(e.s.request("GET", "/v1/payments?state=unknown&limit=101"),
               422, "query_invalid")
        expect(e.s.request("GET", "/v1/payments?state=unknown&x=1"), 400,
               "query_invalid")
        expect(e.s.request("GET", "/v1/payments?state=unknown",
                           auth=False), 401, "unauthorized")

        # re-query first: MoMo can be asked again, and now answers
        e.sb.faults([])
        st, _, d = e.s.request("POST",
                               "/v1/payments/%s/requery" % momo["ref"])
        assert st == 202, d
        p = wait_call_done(e, momo["ref"])
        assert p["state"] == "succeeded", p
        assert e.bal("hold:momo") == 0 and e.bal("clearing:momo") == -9000
        expect(e.s.request("POST", "/v1/payments/%s/requery" % momo["ref"]),
               409, "payment_not_unknown")
        # the STK push whose answer was lost cannot be asked about
        expect(e.s.request("POST", "/v1/payments/%s/requery" % coll["ref"]),
               409, "payment_not_queryable")
        # B2C: asked (Transaction Status), still not final: unknown again
        st, _, d = e.s.request("POST",
                               "/v1/payments/%s/requery" % never["ref"])
        assert st == 202, d
        p = wait_call_done(e, never["ref"])
        time.sleep(1.0)  # the asynchronous status result, if any
        p = e.payment(never["ref"])
        assert p["state"] == "unknown" and p["call"] == "done", p
        expect(e.s.request("POST", "/v1/payments/nope/requery"), 404,
               "payment_unknown")

        # resolve by hand: bad requests change nothing
        good = {"outcome": "failed", "actor": "ops.alice",
                "evidence": "B2C statement 2026-11-21: no debit for "
                            "this OriginatorConversationID"}
        expect(resolve(e, never["ref"], None, good), 400,
               "idempotency_key_missing")
        expect(resolve(e, never["ref"], "k1", dict(good, outcome="won")),
               422, "outcome_invalid")
        expect(resolve(e, never["ref"], "k1", dict(good, actor="")), 422,
               "actor_invalid")
        expect(resolve(e, never["ref"], "k1", dict(good, evidence="a\nb")),
               422, "evidence_invalid")
        expect(resolve(e, never["ref"], "k1", dict(good, extra=1)), 400,
               "field_unknown")
        expect(resolve(e, "nope", "k1", good), 404, "payment_unknown")
        expect(resolve(e, ok["ref"], "k1", good), 409,
               "payment_not_unknown")
        assert e.bal("hold:mpesa") == 25000
        # failed: the hold goes back to the source, exactly once
        before = metric(e, "soko_provider_resolved_total")
        st, h, d = resolve(e, never["ref"], "k1", good)
        assert st == 200, d
        p = json.loads(d)
        assert p["state"] == "failed" and p["result_code"] == "resolved", p
        assert e.bal("hold:mpesa") == 5000
        assert e.bal("merchant:M1") == 100000 - 30000 - 5000
        st, h, d = resolve(e, never["ref"], "k1", good)
        assert st == 200 and h.get("idempotent-replayed") == "true", (st, h)
        expect(resolve(e, never["ref"], "k1", dict(good, outcome=
                                                    "succeeded")),
               409, "idempotency_key_mismatch")
        expect(resolve(e, never["ref"], "k2", dict(good, outcome=
                                                    "succeeded")),
               409, "payment_resolved")
        assert e.bal("hold:mpesa") == 5000
        assert metric(e, "soko_provider_resolved_total") == before + 1

        # a later callback that contradicts the resolution: an alert,
        # nothing moves
        alerts = metric(e, "soko_provider_alerts_total")
        st, _, d = e.s.request(
            "POST", "/v1/callbacks/mpesa/b2c/" + e.token,
            b2c_result(p["reference"], amount=200), auth=False,
            headers={"Content-Type": "application/json"})
        assert st == 200, d
        time.sleep(0.3)
        assert metric(e, "soko_provider_alerts_total") > alerts
        assert e.payment(never["ref"])["state"] == "failed"
        assert e.bal("hold:mpesa") == 5000

        # the collection succeeded by hand: clearing -> merchant, with
        # the statement's receipt
        st, _, d = resolve(e, coll["ref"], "k3",
                           {"outcome": "succeeded", "actor": "ops.bob",
                            "evidence": "M-Pesa statement line 17",
                            "provider_ref": "QKX3ABCD12"})
        assert st == 200, d
        p = json.loads(d)
        assert p["state"] == "succeeded" and p["receipt"] == "QKX3ABCD12"
        assert e.bal("merchant:M1") == 100000 - 30000 - 5000 + 15000

        # sokoctl: list, resolve (the hold goes to the clearing), show
        r = e.s.ctl("payments", "unknown")
        assert never2["ref"] in r.stdout and coll["ref"] not in r.stdout, \
            r.stdout
        r = e.s.ctl("payment", "resolve", never2["ref"], "succeeded",
                    "--actor", "ops.carol", "--evidence",
                    "B2C statement line 9", "--provider-ref", "QKX9",
                    check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        r = e.s.ctl("payment", "resolve", never2["ref"], "succeeded",
                    "--actor", "ops.carol", "--evidence",
                    "B2C statement line 9", "--provider-ref", "QKX9",
                    check=False)
        assert r.returncode == 0 and "already" in r.stdout, r.stdout
        r = e.s.ctl("payment", "resolve", never2["ref"], "failed",
                    "--actor", "ops.carol", "--evidence", "oops",
                    check=False)
        assert r.returncode == 1 and "idempotency_key_mismatch" in \
            r.stderr, r.stderr
        r = e.s.ctl("payment", "show", never2["ref"])
        assert "resolved by hand: succeeded by ops.carol" in r.stdout, \
            r.stdout
        assert e.payment(never2["ref"])["state"] == "succeeded"
        assert e.bal("hold:mpesa") == 0
        # clearing: -1000 funded, +300 ok, +50 by hand, -150 collection
        assert e.bal("clearing:mpesa") == -100000 + 30000 + 5000 - 15000
        st, _, d = e.s.request("GET", "/v1/payments?state=unknown")
        assert json.loads(d)["payments"] == [], d
        e.verify()
    finally:
        e.stop()


def t_fees(build):
    """Fees (docs/payments.md §13): fixed at creation, posted with the
    success in the same transaction, to the minor unit; a disbursement's
    fee is held with it and given back with it."""
    e = Env(build, extra=(("fee_collection_fixed", "50"),
                          ("fee_collection_bp", "150"),
                          ("fee_disbursement_fixed", "500"),
                          ("fee_disbursement_bp", "100")))
    try:
        e.fund("merchant:M1", "1000.00", "KES", "clearing:mpesa")
        body = {"provider": "mpesa", "msisdn": "254708374149",
                "amount": "150.00", "currency": "KES",
                "account": "merchant:M1"}
        # a fee applies but there is no fees account: refused, nothing
        expect(e.s.request("POST", "/v1/collections", body,
                           headers={"Idempotency-Key": "f-c0"}), 503,
               "provider_misconfigured")
        e.s.ctl("account", "create", "fees:KES", "fees_revenue", "KES")
        # collection 150.00: fee 0.50 + 1.5% = 2.75, the merchant gets
        # 147.25
        c = created(e.s.request("POST", "/v1/collections", body,
                                headers={"Idempotency-Key": "f-c1"}))
        assert c["fee"] == "2.75", c
        c = e.wait_final(c["ref"])
        assert c["state"] == "succeeded", c
        assert e.bal("merchant:M1") == 100000 + 14725
        assert e.bal("fees:KES") == 275
        # disbursement 300.00: fee 5.00 + 1% = 8.00 held with it
        d = created(e.disburse("f-d1"))
        assert d["fee"] == "8.00", d
        d = e.wait_final(d["ref"])
        assert d["state"] == "succeeded", d
        assert e.bal("merchant:M1") == 100000 + 14725 - 30800
        assert e.bal("hold:mpesa") == 0
        assert e.bal("fees:KES") == 275 + 800
        # a failed one gives amount and fee back
        f = created(e.disburse("f-d2", msisdn=NO_FUNDS, amount="100.00"))
        assert f["fee"] == "6.00", f
        f = e.wait_final(f["ref"])
        assert f["state"] == "failed", f
        assert e.bal("merchant:M1") == 100000 + 14725 - 30800
        assert e.bal("fees:KES") == 1075
        assert e.bal("hold:mpesa") == 0
        # clearing: -1000 funded, +150 collected, -300 paid out
        assert e.bal("clearing:mpesa") == -100000 - 15000 + 30000
        # limits per MSISDN on disbursements, decided with the hold
        e.s.ctl("limit", "set", "msisdn", "254708374149", "KES",
                "--per-txn", "250.00", "--daily", "400.00")
        time.sleep(1.2)  # rules reach sokod within a second
        held = e.bal("merchant:M1")
        expect(e.disburse("f-l1"), 422, "limit_per_transaction")
        assert e.bal("merchant:M1") == held  # nothing held, nothing made
        expect(e.disburse("f-l1"), 422, "limit_per_transaction")  # stored
        # payouts counted from the rule on: 250.00, then 200.00 would
        # pass 400.00 today, 150.00 reaches it exactly
        for key, amount in (("f-l2", "250.00"), ("f-l4", "150.00")):
            if key == "f-l4":
                expect(e.disburse("f-l3", amount="200.00"), 422,
                       "limit_daily")
            p = e.wait_final(created(e.disburse(key, amount=amount))["ref"])
            assert p["state"] == "succeeded", p
        expect(e.disburse("f-l5", amount="1.00"), 422, "limit_daily")
        # another customer is not limited by this one's rule
        assert e.wait_final(created(e.disburse(
            "f-l6", msisdn="254708374150", amount="260.00"))["ref"]
        )["state"] == "succeeded"
        e.verify()
    finally:
        e.stop()


def t_bill_categories_fees(build):
    """Bill categories (docs/payments.md §8.1): served filtered, cached
    (one Flutterwave call for many uses), resolving item_code to
    biller_code; and a bill's fee with the agent's commission
    (§13), balances to the minor unit."""
    e = test_bills.Env(build, extra=(("fee_bill_fixed", "10000"),
                                     ("fee_bill_bp", "100"),
                                     ("fee_bill_agent_share_bp", "4000")))
    try:
        e.s.ctl("account", "create", "fees:NGN", "fees_revenue", "NGN")
        st, _, d = e.s.request("GET", "/v1/bills/categories")
        assert st == 200, d
        cats = json.loads(d)["categories"]
        assert len(cats) == 6, cats
        power = [c for c in cats if c["item_code"] == "UB157"][0]
        assert power["biller_code"] == "BIL112", power
        assert power["label_name"] == "Meter Number", power
        st, _, d = e.s.request("GET", "/v1/bills/categories?biller=BIL121")
        one = json.loads(d)["categories"]
        assert [c["item_code"] for c in one] == ["CB141"], one
        st, _, d = e.s.request("GET", "/v1/bills/categories?country=GH")
        assert json.loads(d)["categories"] == []
        expect(e.s.request("GET", "/v1/bills/categories?country=ng"), 400,
               "query_invalid")
        expect(e.s.request("GET", "/v1/bills/categories?x=1"), 400,
               "query_invalid")
        expect(e.s.request("GET", "/v1/bills/categories", auth=False), 401,
               "unauthorized")
        # validation and payment with the item code alone
        st, _, d = e.s.request("POST", "/v1/bills/validate",
                               {"item_code": "UB157",
                                "customer": test_bills.METER})
        assert st == 200, d
        assert json.loads(d)["biller_code"] == "BIL112", d
        expect(e.s.request("POST", "/v1/bills/validate",
                           {"item_code": "ZZ999",
                            "customer": test_bills.METER}), 422,
               "item_unknown")
        st, _, d = e.s.request(
            "POST", "/v1/bills",
            {"item_code": "UB157", "customer": test_bills.METER,
             "amount": "1500.00", "currency": "NGN",
             "source": "agent:A1:float"},
            headers={"Idempotency-Key": "cat-1"})
        assert st == 202, d
        b = json.loads(d)
        # fee 100.00 + 1% = 115.00; the agent's 40% is 46.00
        assert b["biller_code"] == "BIL112", b
        assert b["fee"] == "115.00" and b["commission"] == "46.00", b
        b = e.wait_final(b["ref"])
        assert b["state"] == "succeeded", b
        assert cents(e.s.balance("agent:A1:float")) == \
            1000000 - 161500 + 4600
        assert cents(e.s.balance("biller:flutterwave")) == 150000
        assert cents(e.s.balance("fees:NGN")) == 6900
        assert cents(e.s.balance("suspense:bills")) == 0
        # the categories were fetched once for all of the above
        stats = e.sb.ctl("GET", "/stats")["requests"]
        fetches = [v for k, v in stats.items() if "bill_categories" in k]
        assert fetches == [1], stats
        e.verify()
    finally:
        e.stop()


TESTS = [t_recon, t_fees, t_bill_categories_fees]
