"""test_disbursements.py - disbursements through providers, end to end:
sokod pays customers' wallets through soko-sandbox's M-Pesa B2C and MTN
MoMo transfer (docs/payments.md §Disbursements).  The source is debited
into a holding account in the commit that creates the payment; success
moves the hold to the provider's clearing account, a final failure gives
it back.  Every sandbox fault kind: never paid twice in the sandbox's
ledger, never money lost (source + holding + clearing agree with the
payments), `sokoctl verify` clean; forged result callbacks move
nothing."""
import hashlib
import hmac
import json
import os
import time

from harness import FINAL, MOMO_ENV, MOMO_USER, MPESA_ENV, ProvEnv  # noqa: F401

MPESA_PW = "Safaricom999!*!"  # the sandbox's initiator password
MOMO_DISB_KEY = "b4d0f2a3c5e74f80a9b1c2d3e4f5a6b7"
OK = "254708374149"
NO_FUNDS = "254700000001"  # sandbox magic: B2C ResultCode 1
NEVER = "254700999999"     # sandbox magic: never completes
MOMO_OK = "46733123459"
MOMO_NO_PAYEE = "46733123457"  # sandbox magic: FAILED PAYEE_NOT_FOUND
MOMO_PENDING = "46733123454"


def cents(s):
    neg = s.startswith("-")
    a, _, b = s.lstrip("-").partition(".")
    v = int(a) * 100 + int((b + "00")[:2])
    return -v if neg else v


class Env(ProvEnv):
    """A sandbox and a sokod that disburses through both providers."""

    def __init__(self, build, deadline_s=30, timeout_ms=3000, extra=()):
        env = dict(MPESA_ENV)
        env.update(MOMO_ENV)
        env["SOKO_MPESA_INITIATOR_PASSWORD"] = MPESA_PW
        env["SOKO_MOMO_DISBURSEMENT_KEY"] = MOMO_DISB_KEY
        super().__init__(
            build, deadline_s=deadline_s, timeout_ms=timeout_ms, env=env,
            options=(("mpesa_base_url", None),
                     ("mpesa_initiator_name", "testapi"),
                     ("mpesa_cert_file",
                      lambda sb: os.path.join(sb.tls, "mpesa_cert.pem")),
                     ("momo_base_url", None),
                     ("momo_api_user", MOMO_USER),
                     ("prov_first_check_ms", "1500"),
                     ("prov_check_every_ms", "700")) + tuple(extra),
            accounts=(("clearing:mpesa", "provider_clearing", "KES"),
                      ("hold:mpesa", "suspense", "KES", "--floor", "0"),
                      ("merchant:M1", "merchant_payable", "KES", "--floor",
                       "0"),
                      ("merchant:loose", "merchant_payable", "KES"),
                      ("agent:A1:float", "agent_float", "KES"),
                      ("clearing:momo", "provider_clearing", "EUR"),
                      ("hold:momo", "suspense", "EUR", "--floor", "0"),
                      ("merchant:M2", "merchant_payable", "EUR", "--floor",
                       "0")))

    def fund(self, account, amount, cur, clearing):
        st, _, d = self.s.request(
            "POST", "/v1/movements",
            {"type": "adjustment", "currency": cur, "amount": amount,
             "debit": clearing, "credit": account},
            headers={"Idempotency-Key": "fund-" + account})
        assert st in (200, 201), (st, d)

    def disburse(self, key, provider="mpesa", msisdn=OK, amount="300.00",
                 currency="KES", account="merchant:M1"):
        return self.s.request(
            "POST", "/v1/disbursements",
            {"provider": provider, "msisdn": msisdn, "amount": amount,
             "currency": currency, "account": account},
            headers={"Idempotency-Key": key})

    def bal(self, code):
        return cents(self.s.balance(code))



def created(resp):
    st, _, data = resp
    assert st == 202, (st, data)
    return json.loads(data)


def expect(resp, status, code=None):
    st, _, data = resp
    assert st == status, "want %d got %d: %s" % (status, st, data)
    if code is not None:
        assert json.loads(data).get("error") == code, data


def check_money(e, pays, funded, src, hold, clearing):
    """source + holding + clearing agree with the payments: the source
    lost what succeeded or is still open, the hold is what is open, the
    clearing account paid out what succeeded."""
    amt = {p["ref"]: cents(p["amount"]) for p in pays}
    ok = sum(amt[p["ref"]] for p in pays if p["state"] == "succeeded")
    open_ = sum(amt[p["ref"]] for p in pays
                if p["state"] in ("created", "pending", "unknown"))
    assert e.bal(src) == funded - ok - open_, (src, e.bal(src), ok, open_)
    assert e.bal(hold) == open_, (hold, e.bal(hold), open_)
    assert e.bal(clearing) == -funded + ok, (clearing, e.bal(clearing), ok)


def t_disb_mpesa(build):
    e = Env(build)
    try:
        e.fund("merchant:M1", "1000.00", "KES", "clearing:mpesa")
        p = created(e.disburse("d-ok"))
        assert p["kind"] == "disbursement" and p["ref"] == "disb:d-ok", p
        # held in the commit that created it: visible at once
        assert e.bal("merchant:M1") == 70000 and e.bal("hold:mpesa") == \
            30000
        q = created(e.disburse("d-poor", msisdn=NO_FUNDS, amount="200.00"))
        # insufficient source: 422 with the ledger's code, nothing made
        expect(e.disburse("d-big", amount="600.00"), 422,
               "insufficient_funds")
        expect(e.s.request("GET", "/v1/payments/disb:d-big"), 404,
               "payment_unknown")
        # repeats: same answer; other content: refused
        st, h, d = e.disburse("d-ok")
        assert st == 200 and h.get("idempotent-replayed") == "true", d
        expect(e.disburse("d-ok", amount="1.00"), 409,
               "idempotency_key_mismatch")
        expect(e.disburse("d-x1", account="merchant:nope"), 422,
               "account_unknown")
        expect(e.disburse("d-x2", account="merchant:M2"), 422,
               "currency_mismatch")
        expect(e.disburse("d-x3", account="merchant:loose"), 422,
               "account_without_floor")
        expect(e.disburse("d-x4", amount="10.50"), 422,
               "amount_invalid_for_provider")
        expect(e.disburse("d-x5", provider="nope"), 422, "provider_unknown")
        f = e.wait_final(p["ref"])
        g = e.wait_final(q["ref"])
        assert f["state"] == "succeeded" and f["receipt"], f
        assert g["state"] == "failed", g
        ch = e.charges(f["reference"])
        assert [c["state"] for c in ch] == ["succeeded"], ch
        assert [c["state"] for c in e.charges(g["reference"])] == \
            ["failed"]
        check_money(e, [f, g], 100000, "merchant:M1", "hold:mpesa",
                    "clearing:mpesa")
        # an agent's float can pay out too (its floor 0 applies)
        e.fund("agent:A1:float", "50.00", "KES", "clearing:mpesa")
        expect(e.disburse("d-a1", account="agent:A1:float",
                          amount="60.00"), 422, "insufficient_funds")
        a = created(e.disburse("d-a2", account="agent:A1:float",
                               amount="50.00"))
        assert e.wait_final(a["ref"])["state"] == "succeeded"
        assert e.bal("agent:A1:float") == 0
        e.verify()
    finally:
        e.stop()


def t_disb_momo(build):
    e = Env(build)
    try:
        e.fund("merchant:M2", "100.00", "EUR", "clearing:momo")
        p = created(e.disburse("m-ok", "momo", MOMO_OK, "25.50", "EUR",
                               "merchant:M2"))
        q = created(e.disburse("m-nope", "momo", MOMO_NO_PAYEE, "10.00",
                               "EUR", "merchant:M2"))
        expect(e.disburse("m-big", "momo", MOMO_OK, "70.00", "EUR",
                          "merchant:M2"), 422, "insufficient_funds")
        f, g = e.wait_final(p["ref"]), e.wait_final(q["ref"])
        assert f["state"] == "succeeded" and f["receipt"], f
        assert len(f["reference"]) == 36, f  # our X-Reference-Id
        assert g["state"] == "failed" and \
            g["result_code"] == "PAYEE_NOT_FOUND", g
        assert [c["op"] for c in e.charges(f["reference"])] == ["transfer"]
        check_money(e, [f, g], 10000, "merchant:M2", "hold:momo",
                    "clearing:momo")
        e.verify()
    finally:
        e.stop()


FAULTS = ["delay", "no_callback", "callback_twice",
          "callback_before_response", "contradicting_callback",
          "expired_token", "reset_after_commit", "error500_after_commit",
          "timeout"]


def t_disb_faults(build):
    """Every fault kind on the B2C and on the transfer.  Both providers
    are asked by our own id, so every lost answer is resolved to the
    sandbox's truth; none is ever sent twice."""
    e = Env(build, deadline_s=25, timeout_ms=1500)
    try:
        e.fund("merchant:M1", "10000.00", "KES", "clearing:mpesa")
        e.fund("merchant:M2", "1000.00", "EUR", "clearing:momo")
        rules, pays = [], []
        for i, fault in enumerate(FAULTS):
            for prov, op, msisdn in (
                    ("mpesa", "b2c", "2547083742%02d" % i),
                    ("momo", "transfer", "4673312%04d" % (8000 + i))):
                r = {"provider": prov, "fault": fault, "rate": 1.0,
                     "count": 1, "msisdn": msisdn,
                     "op": "*" if fault == "expired_token" else op}
                if fault == "delay":
                    r["ms"] = 300
                rules.append(r)
        e.sb.faults(rules)
        for i, fault in enumerate(FAULTS):
            pays.append(("mpesa", fault, created(e.disburse(
                "f-m-%d" % i, msisdn="2547083742%02d" % i,
                amount="100.00"))))
            pays.append(("momo", fault, created(e.disburse(
                "f-o-%d" % i, "momo", "4673312%04d" % (8000 + i), "10.00",
                "EUR", "merchant:M2"))))
        done = {"mpesa": [], "momo": []}
        for prov, fault, p in pays:
            f = e.wait_final(p["ref"], timeout=30)
            ch = e.charges(f["reference"])
            taken = [c for c in ch if c["state"] == "succeeded"]
            # never paid twice: one transfer at the provider at most
            assert len(ch) <= 1 and len(taken) <= 1, (prov, fault, ch)
            assert f["state"] == "succeeded", (prov, fault, f, ch)
            assert len(taken) == 1, (prov, fault, ch)
            done[prov].append(f)
        check_money(e, done["mpesa"], 1000000, "merchant:M1", "hold:mpesa",
                    "clearing:mpesa")
        check_money(e, done["momo"], 100000, "merchant:M2", "hold:momo",
                    "clearing:momo")
        e.verify()
    finally:
        e.stop()


def b2c_result(ocid, code=0, amount=300, receipt="SBX0000001"):
    r = {"ResultType": 0, "ResultCode": code, "ResultDesc": "x",
         "OriginatorConversationID": ocid, "ConversationID": "AG_1",
         "TransactionID": receipt}
    if code == 0:
        r["ResultParameters"] = {"ResultParameter": [
            {"Key": "TransactionAmount", "Value": amount},
            {"Key": "TransactionReceipt", "Value": receipt}]}
    return {"Result": r}


def status_result(ocid, status="Completed", amount=300):
    r = b2c_result("q-1")["Result"]
    r["ResultParameters"] = {"ResultParameter": [
        {"Key": "OriginatorConversationID", "Value": ocid},
        {"Key": "TransactionStatus", "Value": status},
        {"Key": "Amount", "Value": amount},
        {"Key": "ReceiptNo", "Value": "SBX0000002"}]}
    return {"Result": r}


def t_disb_forged(build):
    e = Env(build)
    try:
        e.fund("merchant:M1", "1000.00", "KES", "clearing:mpesa")
        e.fund("merchant:M2", "100.00", "EUR", "clearing:momo")
        ok = e.wait_final(created(e.disburse("g-ok"))["ref"])
        assert ok["state"] == "succeeded", ok
        stuck = created(e.disburse("g-stuck", msisdn=NEVER))
        mstuck = created(e.disburse("g-mstuck", "momo", MOMO_PENDING,
                                    "10.00", "EUR", "merchant:M2"))
        time.sleep(0.5)
        sp = e.payment(stuck["ref"])
        before = [e.bal(a) for a in ("merchant:M1", "hold:mpesa",
                                     "clearing:mpesa", "merchant:M2",
                                     "hold:momo", "clearing:momo")]

        def cb(path, body, auth_token=None):
            return e.s.request(
                "POST", "/v1/callbacks/mpesa/" + path, body, auth=False,
                headers={"Content-Type": "application/json"})

        # wrong token: no such endpoint
        expect(cb("b2c/" + "0" * 48, b2c_result(sp["reference"])), 404,
               "not_found")
        # a B2C result with the right token claiming success for a
        # transfer that never completes, or failure for a paid one:
        # recorded, only a status query decides
        expect(cb("b2c/" + e.token, b2c_result(sp["reference"])), 200)
        expect(cb("b2c/" + e.token, b2c_result(ok["reference"], code=1)),
               200)
        expect(cb("timeout/" + e.token, b2c_result(sp["reference"],
                                                     code=1)), 200)
        expect(cb("b2c/" + e.token, {"Result": {}}), 400,
               "callback_field_missing")
        expect(cb("b2c/" + e.token, "{"), 400, "callback_invalid_json")
        # a status result needs the MAC of its own query's URL
        body = status_result(sp["reference"])
        expect(cb("status/%s/%s/%s" % (e.token, sp["reference"], "0" * 32),
                  body), 404, "not_found")
        expect(cb("status/%s/%s" % (e.token, sp["reference"]), body), 404,
               "not_found")
        # even with it, the transaction it reports must be ours
        key = hashlib.sha256(("soko mpesa status|%s|%s|%s" % (
            e.token, MPESA_PW, MPESA_ENV["SOKO_MPESA_CONSUMER_SECRET"])
        ).encode()).digest()
        mac = hmac.new(key, ("status|" + sp["reference"]).encode(),
                       hashlib.sha256).hexdigest()[:32]
        expect(cb("status/%s/%s/%s" % (e.token, sp["reference"], mac),
                  status_result(ok["reference"])), 422,
               "status_not_this_payment")
        # MoMo: a forged SUCCESSFUL for a pending transfer
        mp = e.payment(mstuck["ref"])
        fake = {"financialTransactionId": "1", "externalId": mp["reference"],
                "amount": "10", "currency": "EUR",
                "payee": {"partyIdType": "MSISDN", "partyId": MOMO_PENDING},
                "status": "SUCCESSFUL"}
        expect(e.s.request("POST", "/v1/callbacks/momo/" + e.token[::-1],
                           fake, auth=False), 200)
        time.sleep(2.5)  # the status queries they triggered come back
        assert e.payment(stuck["ref"])["state"] == "pending"
        assert e.payment(mstuck["ref"])["state"] == "pending"
        assert e.payment(ok["ref"])["state"] == "succeeded"
        after = [e.bal(a) for a in ("merchant:M1", "hold:mpesa",
                                    "clearing:mpesa", "merchant:M2",
                                    "hold:momo", "clearing:momo")]
        assert before == after, (before, after)
        e.verify()
    finally:
        e.stop()


TESTS = [t_disb_mpesa, t_disb_momo, t_disb_faults, t_disb_forged]
