"""test_bills.py - bill payments through Flutterwave, end to end: sokod
and soko-sandbox over real HTTPS (the sandbox's test CA).  Validation
(name on a meter), a paid electricity bill and its token, a biller that
refuses (the source refunded, balances restored), every sandbox fault
kind on the create-payment call (no double bill at the sandbox, no money
lost: float + holding + biller payable always account for every bill),
bad inputs (docs/payments.md §Bill payments, docs/api.md §Bills)."""
import json
import os
import time

from harness import FINAL, ProvEnv  # noqa: F401

FLW_SECRET = "FLWSECK_TEST-sokosandbox0000000000000000000-X"  # sandbox's
POWER = {"item_code": "UB157", "biller_code": "BIL112"}  # EKEDC prepaid
DSTV = {"item_code": "CB141", "biller_code": "BIL121"}
METER = "45067198012"
UNKNOWN = "0000000000"       # sandbox magic: unknown customer
DECLINED = "45067199901"     # sandbox magic (...9901): the biller refuses


class Env(ProvEnv):
    def __init__(self, build, deadline_s=30, timeout_ms=3000, float_="10000.00",
                 extra=()):
        super().__init__(
            build, deadline_s=deadline_s, timeout_ms=timeout_ms,
            sandbox_extra=(), env={"SOKO_FLW_SECRET_KEY": FLW_SECRET},
            options=(("bills_flw_base_url", None),
                     ("prov_first_check_ms", "200")) + tuple(extra),
            accounts=[(code, typ, "NGN") for code, typ in (
                ("suspense:bills", "suspense"),
                ("biller:flutterwave", "biller_payable"),
                ("agent:A1:float", "agent_float"),
                ("clearing:topup", "provider_clearing"),
                ("merchant:X", "merchant_payable"))])
        st, _, data = self.s.request(
            "POST", "/v1/movements",
            {"type": "float_topup", "amount": float_, "currency": "NGN",
             "debit": "clearing:topup", "credit": "agent:A1:float"},
            headers={"Idempotency-Key": "topup-1"})
        assert st == 201, (st, data)

    def validate(self, customer, **over):
        b = dict(POWER, customer=customer)
        b.update(over)
        return self.s.request("POST", "/v1/bills/validate", b)

    def pay(self, key, customer=METER, amount="1500.00", **over):
        b = dict(POWER, customer=customer, amount=amount, currency="NGN",
                 source="agent:A1:float")
        b.update(over)
        return self.s.request("POST", "/v1/bills", b,
                              headers={"Idempotency-Key": key})

    def bill(self, ref):
        return self.payment(ref, "/v1/bills/")

    def wait_final(self, ref, timeout=30):
        return super().wait_final(ref, timeout, "/v1/bills/")

    def balances(self):
        return tuple(self.s.balance(c) for c in
                     ("agent:A1:float", "suspense:bills",
                      "biller:flutterwave"))


def expect(resp, status, code=None):
    st, _, data = resp
    assert st == status, "want %d got %d: %s" % (status, st, data)
    if code is not None:
        assert json.loads(data).get("error") == code, data
    return json.loads(data) if data else None


def t_bill_validate(build):
    e = Env(build)
    try:
        v = expect(e.validate(METER), 200)
        assert v["customer_name"] == "JOHN DOE", v
        assert v["customer"] == METER and v["currency"] == "NGN", v
        assert "amount_due" in v, v
        expect(e.validate(UNKNOWN), 422, "customer_unknown")
        expect(e.validate(METER, item_code="UB999"), 422, "item_unknown")
        expect(e.validate("12 34"), 422, "customer_invalid")
        expect(e.s.request("POST", "/v1/bills/validate", {"customer": METER}),
               400, "field_missing")
        expect(e.s.request("POST", "/v1/bills/validate", "{"), 400,
               "bad_json")
        expect(e.s.request("POST", "/v1/bills/validate", dict(POWER, customer=METER),
                           auth=False), 401, "unauthorized")
        assert e.balances() == ("10000.00", "0.00", "0.00")
    finally:
        e.stop()


def t_bill_pay_token(build):
    e = Env(build)
    try:
        b = expect(e.pay("b-ok", customer_name="JOHN DOE"), 202)
        assert b["ref"] == "bill:b-ok" and b["state"] == "pending", b
        # the money left the float at once, into holding
        assert e.balances() == ("8500.00", "1500.00", "0.00")
        f = e.wait_final(b["ref"])
        assert f["state"] == "succeeded", f
        assert len(f["token"].split("-")) == 5, f  # the electricity token
        assert f["provider_reference"].startswith("CF-FLYAPI-"), f
        assert f["customer_name"] == "JOHN DOE", f
        assert e.balances() == ("8500.00", "0.00", "1500.00")
        ch = e.charges(f["reference"])
        assert len(ch) == 1 and ch[0]["state"] == "succeeded", ch
        # the same request again: the same bill, nothing moves
        st, h, data = e.pay("b-ok", customer_name="JOHN DOE")
        assert st == 200 and h.get("idempotent-replayed") == "true", data
        assert json.loads(data)["state"] == "succeeded"
        expect(e.pay("b-ok", amount="10.00"), 409, "idempotency_key_mismatch")
        # a DSTV bill: no token, a reference
        d = expect(e.pay("b-tv", amount="100.00", **DSTV), 202)
        g = e.wait_final(d["ref"])
        assert g["state"] == "succeeded" and g["token"] == "", g
        assert e.balances() == ("8400.00", "0.00", "1600.00")
        e.verify()
    finally:
        e.stop()


def t_bill_refund(build):
    e = Env(build)
    try:
        b = expect(e.pay("b-no", customer=DECLINED), 202)
        f = e.wait_final(b["ref"])
        assert f["state"] == "failed" and f["refunded"], f
        assert e.balances() == ("10000.00", "0.00", "0.00")
        assert not [c for c in e.charges(f["reference"])
                    if c["state"] == "succeeded"]
        # more than the float holds: refused, nothing sent, nothing moved
        expect(e.pay("b-poor", amount="20000.00"), 422, "insufficient_funds")
        expect(e.pay("b-poor", amount="20000.00"), 422, "insufficient_funds")
        g = e.bill("bill:b-poor")
        assert g["state"] == "failed" and not g["refunded"], g
        assert e.charges(g["reference"]) == []
        assert e.balances() == ("10000.00", "0.00", "0.00")
        e.verify()
    finally:
        e.stop()


def t_bill_bad_inputs(build):
    e = Env(build)
    try:
        expect(e.pay("x1", amount="0"), 422, "amount_zero")
        expect(e.pay("x2", amount="1.005"), 422, "amount_precision")
        expect(e.pay("x3", currency="KES"), 422, "currency_unsupported")
        expect(e.pay("x4", currency="XYZ"), 422, "currency_unknown")
        expect(e.pay("x5", source="agent:none"), 422, "account_unknown")
        expect(e.pay("x6", source="merchant:X"), 422, "account_type")
        expect(e.pay("x7", item_code="U B"), 422, "item_code_invalid")
        expect(e.pay("x8", biller_code=""), 422, "biller_code_invalid")
        expect(e.pay("x9", customer="x" * 41), 400, "field_too_long")
        expect(e.pay("x10", extra=1), 400, "field_unknown")
        expect(e.pay("x11", amount=15), 400, "field_type")
        expect(e.s.request("POST", "/v1/bills", {}), 400,
               "idempotency_key_missing")
        expect(e.s.request("GET", "/v1/bills/bill:none"), 404, "bill_unknown")
        expect(e.s.request("POST", "/v1/bills/bill:none", {}), 405,
               "method_not_allowed")
        expect(e.s.request("GET", "/v1/bills"), 405, "method_not_allowed")
        assert e.balances() == ("10000.00", "0.00", "0.00")
    finally:
        e.stop()


FAULTS = ["delay", "timeout", "reset_after_commit", "error500_after_commit",
          "no_callback", "callback_twice", "callback_before_response",
          "contradicting_callback", "expired_token"]


def t_bill_faults(build):
    """Every fault kind on the create-payment call: a bill is queried by
    our reference, so each ends in the sandbox's truth, never paid twice,
    never lost."""
    e = Env(build, deadline_s=20, timeout_ms=1500)
    try:
        rules, bills = [], []
        for i, fault in enumerate(FAULTS):
            cust = "4506719%04d" % (8000 + i)
            r = {"provider": "flutterwave", "op": "bill_create",
                 "fault": fault, "rate": 1.0, "count": 1, "msisdn": cust}
            if fault == "delay":
                r["ms"] = 300
            rules.append(r)
        e.sb.faults(rules)
        for i, fault in enumerate(FAULTS):
            bills.append(expect(e.pay("f-%d" % i, amount="100.00",
                                      customer="4506719%04d" % (8000 + i)),
                                202))
        paid = 0
        for fault, b in zip(FAULTS, bills):
            f = e.wait_final(b["ref"], timeout=25)
            ch = e.charges(f["reference"])
            taken = [c for c in ch if c["state"] == "succeeded"]
            assert len(ch) <= 1 and len(taken) <= 1, (fault, ch)
            assert f["state"] == "succeeded", (fault, f, ch)
            assert len(taken) == 1, (fault, ch)
            paid += 100
        fl, hold, payable = (float(x) for x in e.balances())
        assert hold == 0 and payable == paid, e.balances()
        assert fl + hold + payable == 10000, e.balances()
        e.verify()
    finally:
        e.stop()


TESTS = [t_bill_validate, t_bill_pay_token, t_bill_refund, t_bill_bad_inputs,
         t_bill_faults]
