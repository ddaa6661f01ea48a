"""test_prov_more.py - Paystack, Flutterwave (mobile-money charge) and
Orange Money WebPay collections end to end: sokod and soko-sandbox over
real HTTPS on loopback (the sandbox's own test CA).  Per provider:
success, the customer's failure (sandbox magic numbers), idempotent
repeat, forged webhooks and notifications (nothing changes, a specific
status), and every sandbox fault kind resolved to the sandbox's truth,
balances and `sokoctl verify` clean (docs/payments.md §5-7)."""
import hashlib
import hmac
import json
import os
import time

from harness import FINAL, ProvEnv  # noqa: F401

# the sandbox's defaults (tests/sandbox/sb_main.c defaults())
PAYSTACK_SECRET = "sk_test_simulator"
FLW_SECRET = "FLWSECK_TEST-sokosandbox0000000000000000000-X"
FLW_HASH = "soko-flw-secret-hash"
ORANGE_ID = "soko-orange-client"
ORANGE_SECRET = "soko-orange-secret"
ORANGE_MERCHANT = "e9afd305"
# sandbox magic: Paystack and Flutterwave fail a phone ending 9901;
# Orange decides by amount: 9901 FAILED, 9902 EXPIRED
OK_PHONE = "233241230001"
FAIL_PHONE = "233241239901"
FAULTS = ["delay", "no_callback", "callback_twice",
          "callback_before_response", "contradicting_callback",
          "expired_token", "reset_after_commit", "error500_after_commit",
          "timeout"]
# an Orange init whose answer is lost cannot be queried (no pay_token):
# unknown at the deadline, for reconciliation, never failed, no posting
ORANGE_LOST = ("reset_after_commit", "error500_after_commit", "timeout")


class Env(ProvEnv):
    """A sandbox and a sokod driving Paystack, Flutterwave and Orange."""

    def __init__(self, build, deadline_s=30, timeout_ms=3000):
        token = os.urandom(24).hex()
        super().__init__(
            build, deadline_s=deadline_s, timeout_ms=timeout_ms,
            sandbox_extra=(
                "--callback-delay-ms", "100", "--orange-currency", "XOF",
                "--webhook", "paystack={sokod}/v1/callbacks/paystack/webhook",
                "--webhook",
                "flutterwave={sokod}/v1/callbacks/flutterwave/webhook"),
            env={"SOKO_PAYSTACK_SECRET_KEY": PAYSTACK_SECRET,
                 "SOKO_FLW_SECRET_KEY": FLW_SECRET,
                 "SOKO_FLW_SECRET_HASH": FLW_HASH,
                 "SOKO_ORANGE_CLIENT_SECRET": ORANGE_SECRET,
                 "SOKO_ORANGE_MERCHANT_KEY": ORANGE_MERCHANT,
                 "SOKO_ORANGE_CALLBACK_TOKEN": token},
            options=(("paystack_base_url", None),
                     ("paystack_email_domain", "customers.example.com"),
                     ("flw_base_url", None),
                     ("flw_email_domain", "customers.example.com"),
                     ("orange_base_url", None),
                     ("orange_client_id", ORANGE_ID),
                     ("orange_return_url", "https://shop.example/paid"),
                     ("orange_cancel_url", "https://shop.example/cancel"),
                     ("prov_first_check_ms", "1000"),
                     ("prov_max_checks", "30")),
            accounts=(("clearing:paystack", "provider_clearing", "GHS"),
                      ("clearing:flutterwave", "provider_clearing", "GHS"),
                      ("clearing:orange", "provider_clearing", "XOF"),
                      ("merchant:G1", "merchant_payable", "GHS"),
                      ("merchant:G2", "merchant_payable", "GHS"),
                      ("merchant:X1", "merchant_payable", "XOF")))
        self.token = token  # Orange's URL token

    def collect(self, provider, key, msisdn=OK_PHONE, amount=None, **over):
        acct, cur, amt = {"paystack": ("merchant:G1", "GHS", "25.00"),
                          "flutterwave": ("merchant:G2", "GHS", "25.50"),
                          "orange": ("merchant:X1", "XOF", "1500")}[provider]
        b = {"provider": provider, "msisdn": msisdn,
             "amount": amount or amt, "currency": cur, "account": acct}
        b.update(over)
        return self.s.request("POST", "/v1/collections", b,
                              headers={"Idempotency-Key": key})

    def wait_final(self, ref, timeout=20):
        return super().wait_final(ref, timeout)

    def post(self, path, body, headers=None):
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body, separators=(",", ":"))
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.s.request("POST", path, body, auth=False, headers=h)

    def paystack_hook(self, body, sig=None):
        raw = json.dumps(body, separators=(",", ":")).encode()
        if sig is None:
            sig = hmac.new(PAYSTACK_SECRET.encode(), raw,
                           hashlib.sha512).hexdigest()
        h = {"x-paystack-signature": sig} if sig != "" else {}
        return self.post("/v1/callbacks/paystack/webhook", raw, h)

    def flw_hook(self, body, hash_=FLW_HASH):
        h = {"verif-hash": hash_} if hash_ is not None else {}
        return self.post("/v1/callbacks/flutterwave/webhook", body, h)

    def orange_notif(self, order_id, body, token=None):
        return self.post("/v1/callbacks/orange/%s/%s"
                         % (token or self.token, order_id), body)

    def balances(self):
        return tuple(self.s.balance(a) for a in (
            "merchant:G1", "merchant:G2", "merchant:X1",
            "clearing:paystack", "clearing:flutterwave", "clearing:orange"))



def created(resp):
    st, _, data = resp
    assert st == 202, (st, data)
    return json.loads(data)


def expect(resp, status, code=None):
    st, _, data = resp
    assert st == status, "want %d got %d: %s" % (status, st, data)
    if code is not None:
        assert json.loads(data).get("error") == code, data


def basics(e, provider, fail_kw, fail_code):
    """Success, customer failure, idempotent repeat, a wrong currency;
    returns the succeeded payment."""
    ok = created(e.collect(provider, provider + "-ok"))
    bad = created(e.collect(provider, provider + "-fail", **fail_kw))
    st, h, data = e.collect(provider, provider + "-ok")
    assert st == 200 and h.get("idempotent-replayed") == "true", data
    assert json.loads(data)["ref"] == ok["ref"]
    expect(e.collect(provider, provider + "-ok", msisdn="233241230002"),
           409, "idempotency_key_mismatch")
    expect(e.collect(provider, provider + "-kes", currency="KES"), 422,
           "amount_invalid_for_provider")
    f = e.wait_final(ok["ref"])
    assert f["state"] == "succeeded" and f["txn_id"] > 0, f
    assert f["receipt"] and f["provider_reference"], f
    g = e.wait_final(bad["ref"])
    assert g["state"] == "failed" and g["result_code"] == fail_code, g
    assert g["txn_id"] == 0, g
    # the repeat made no second charge; the failure charged nothing
    assert [c["state"] for c in e.charges(f["reference"])] == ["succeeded"]
    assert all(c["state"] != "succeeded" for c in e.charges(g["reference"]))
    return f


def t_paystack_collection(build):
    e = Env(build)
    try:
        f = basics(e, "paystack", {"msisdn": FAIL_PHONE}, "failed")
        assert len(f["reference"]) == 24, f
        assert e.s.balance("merchant:G1") == "25.00"
        assert e.s.balance("clearing:paystack") == "-25.00"
        before = e.balances()
        ref = f["reference"]
        good = {"event": "charge.success",
                "data": {"id": 1, "reference": ref, "status": "success",
                         "amount": 2500, "currency": "GHS"}}
        # the signature is checked over the raw body, before parsing
        expect(e.paystack_hook(good, sig=""), 401,
               "callback_signature_invalid")
        expect(e.paystack_hook(good, sig="0" * 128), 401,
               "callback_signature_invalid")
        expect(e.paystack_hook(good, sig="zz"), 401,
               "callback_signature_invalid")
        sig = hmac.new(PAYSTACK_SECRET.encode(), b"{}",
                       hashlib.sha512).hexdigest()
        expect(e.post("/v1/callbacks/paystack/webhook", "{\"a\":1}",
                      {"x-paystack-signature": sig}), 401,
               "callback_signature_invalid")  # signed another body
        expect(e.post("/v1/callbacks/paystack/other", good), 404,
               "not_found")
        expect(e.paystack_hook({"event": "charge.success"}), 400,
               "callback_field_missing")
        unknown = json.loads(json.dumps(good))
        unknown["data"]["reference"] = "NOSUCHREF"
        expect(e.paystack_hook(unknown), 404, "payment_unknown")
        altered = json.loads(json.dumps(good))
        altered["data"]["amount"] = 1
        expect(e.paystack_hook(altered), 422, "amount_mismatch")
        other_cur = json.loads(json.dumps(good))
        other_cur["data"]["currency"] = "NGN"
        expect(e.paystack_hook(other_cur), 422, "currency_mismatch")
        expect(e.paystack_hook({"event": "transfer.success",
                                "data": {}}), 200)  # not ours: ack
        expect(e.paystack_hook(good), 200)  # duplicate: recorded
        assert e.balances() == before
        assert e.payment("col:paystack-ok")["state"] == "succeeded"
        e.verify()
    finally:
        e.stop()


OTP_PHONE = "233241239911"  # sandbox magic: asks for an OTP (123456)
PIN_PHONE = "233241239912"  # asks for a PIN (1234), then an OTP


def t_paystack_otp(build):
    """A charge that asks the customer for an OTP or a PIN: the step is
    shown by GET /v1/payments/{ref}, the answer relayed by .../otp and
    .../pin, then the verify decides as always; wrong answers are the
    provider's refusal; the secret is never logged."""
    e = Env(build)
    try:
        def step(ref, what, value):
            return e.s.request("POST", "/v1/payments/%s/%s" % (ref, what),
                               {what: value})

        def asked(ref, want):
            end = time.time() + 10
            while time.time() < end:
                p = e.payment(ref)
                if p["next_step"] == want:
                    return p
                time.sleep(0.05)
            raise AssertionError((want, p))

        p = created(e.collect("paystack", "otp-1", msisdn=OTP_PHONE))
        assert p["next_step"] == "", p  # not sent yet
        p = asked(p["ref"], "send_otp")
        assert p["state"] == "pending", p
        assert p["display_text"] == "Please enter the OTP sent to your " \
            "phone", p
        expect(step(p["ref"], "otp", "12"), 400, "otp_invalid")
        expect(step(p["ref"], "otp", "12a456"), 400, "otp_invalid")
        expect(e.s.request("POST", "/v1/payments/%s/otp" % p["ref"],
                           "{"), 400, "otp_invalid")
        expect(step(p["ref"], "pin", "1234"), 409, "step_not_expected")
        expect(step("NOSUCHREF", "otp", "123456"), 404, "payment_unknown")
        expect(e.s.request("GET", "/v1/payments/%s/otp" % p["ref"]), 405,
               "method_not_allowed")
        # a wrong OTP: the provider refuses, the customer tries again
        expect(step(p["ref"], "otp", "654321"), 422, "provider_refused")
        assert e.payment(p["ref"])["next_step"] == "send_otp"
        st, _, d = step(p["ref"], "otp", "123456")
        assert st == 200, (st, d)
        assert json.loads(d)["next_step"] == "pay_offline", d
        f = e.wait_final(p["ref"])
        assert f["state"] == "succeeded" and f["next_step"] == "", f
        assert [c["state"] for c in e.charges(f["reference"])] == \
            ["succeeded"]
        expect(step(p["ref"], "otp", "123456"), 409, "step_not_expected")
        # PIN, then OTP
        q = created(e.collect("paystack", "pin-1", msisdn=PIN_PHONE))
        q = asked(q["ref"], "send_pin")
        expect(step(q["ref"], "otp", "123456"), 409, "step_not_expected")
        expect(step(q["ref"], "pin", "1234567"), 400, "pin_invalid")
        st, _, d = step(q["ref"], "pin", "1234")
        assert st == 200 and json.loads(d)["next_step"] == "send_otp", d
        st, _, d = step(q["ref"], "otp", "123456")
        assert st == 200, (st, d)
        assert e.wait_final(q["ref"])["state"] == "succeeded"
        # three wrong OTPs fail the charge; the verify says so
        w = created(e.collect("paystack", "otp-2", msisdn=OTP_PHONE))
        w = asked(w["ref"], "send_otp")
        expect(step(w["ref"], "otp", "111111"), 422, "provider_refused")
        expect(step(w["ref"], "otp", "222222"), 422, "provider_refused")
        st, _, d = step(w["ref"], "otp", "333333")
        assert st == 200 and json.loads(d)["next_step"] == "", d
        g = e.wait_final(w["ref"])
        assert g["state"] == "failed", g
        # another provider's payment asks for no such step
        o = created(e.collect("orange", "o-step"))
        expect(step(o["ref"], "otp", "123456"), 422, "step_unsupported")
        assert e.wait_final(o["ref"])["state"] == "succeeded"
        assert e.s.balance("merchant:G1") == "50.00"
        # the sandbox's last webhooks reach sokod before it stops
        end = time.time() + 5
        while e.sb.ctl("GET", "/stats")["callbacks"]["in_flight"] and \
                time.time() < end:
            time.sleep(0.05)
        # the secrets never reach the log
        log = e.s.stderr_text()
        for v in ("654321", "111111", "222222", "333333", "123456"):
            assert v not in log, v
        e.verify()
    finally:
        e.stop()


def flw_body(tx_ref, amount=25.5, currency="GHS", status="successful"):
    return {"event": "charge.completed",
            "data": {"id": 7, "tx_ref": tx_ref, "flw_ref": "1234567890",
                     "amount": amount, "charged_amount": amount,
                     "currency": currency, "status": status},
            "event.type": "MOBILEMONEYGH_TRANSACTION"}


def t_flw_collection(build):
    e = Env(build)
    try:
        f = basics(e, "flutterwave", {"msisdn": FAIL_PHONE}, "failed")
        assert e.s.balance("merchant:G2") == "25.50"
        assert e.s.balance("clearing:flutterwave") == "-25.50"
        before = e.balances()
        ref = f["reference"]
        expect(e.flw_hook(flw_body(ref), hash_=None), 401,
               "callback_hash_invalid")
        expect(e.flw_hook(flw_body(ref), hash_="soko-flw-secret-hasH"),
               401, "callback_hash_invalid")
        expect(e.flw_hook("{", hash_="nope"), 401,
               "callback_hash_invalid")  # checked before parsing
        expect(e.flw_hook("{"), 400, "callback_invalid_json")
        expect(e.flw_hook(flw_body("NOSUCHREF")), 404, "payment_unknown")
        expect(e.flw_hook(flw_body(ref, amount=2.55)), 422,
               "amount_mismatch")
        expect(e.flw_hook(flw_body(ref, currency="KES")), 422,
               "currency_mismatch")
        expect(e.flw_hook(flw_body(ref, status="failed")), 200)  # alert
        expect(e.flw_hook(flw_body(ref)), 200)  # duplicate
        assert e.balances() == before
        assert e.payment("col:flutterwave-ok")["state"] == "succeeded"
        e.verify()
    finally:
        e.stop()


def t_orange_collection(build):
    e = Env(build)
    try:
        f = basics(e, "orange", {"amount": "9901"}, "FAILED")
        exp = created(e.collect("orange", "orange-expired", amount="9902"))
        g = e.wait_final(exp["ref"])
        assert g["state"] == "failed" and g["result_code"] == "EXPIRED", g
        expect(e.collect("orange", "orange-frac", currency="GHS",
                         account="merchant:G1"), 422,
               "amount_invalid_for_provider")
        assert len(f["provider_reference"]) == 64, f  # the pay_token
        # the customer pays at payment_url: shown while the payment is
        # open (not in the 202: the janitor opens the page after it)
        assert f["payment_url"] == "" and f["next_step"] == "", f
        wait = created(e.collect("orange", "orange-page", amount="9903"))
        assert wait["payment_url"] == "", wait
        end = time.time() + 10
        while time.time() < end:
            w = e.payment(wait["ref"])
            if w["provider_reference"]:
                break
            time.sleep(0.05)
        assert w["state"] == "pending" and w["next_step"] == "open_url", w
        assert w["payment_url"] == (
            "https://webpayment-ow-sb.orange-money.com/payment/pay_token/"
            + w["provider_reference"]), w
        # and in the answer to a repeat of the creation
        st, _, data = e.collect("orange", "orange-page", amount="9903")
        assert st == 200 and json.loads(data)["payment_url"] == \
            w["payment_url"], data
        assert e.s.balance("merchant:X1") == "1500"
        assert e.s.balance("clearing:orange") == "-1500"
        before = e.balances()
        order = f["reference"]
        body = {"status": "SUCCESS", "notif_token": "0" * 32,
                "txnid": "MP000000.0000.A00000"}
        expect(e.orange_notif(order, body, token="0" * 48), 404,
               "not_found")
        expect(e.post("/v1/callbacks/orange/" + e.token, body), 404,
               "not_found")
        expect(e.orange_notif("NOSUCHORDER", body), 404, "payment_unknown")
        expect(e.orange_notif(order, body), 401, "callback_token_invalid")
        body["status"] = "FAILED"
        expect(e.orange_notif(order, body), 401, "callback_token_invalid")
        expect(e.orange_notif(order, {"status": "SUCCESS"}), 400,
               "callback_field_missing")
        assert e.balances() == before
        assert e.payment(f["ref"])["state"] == "succeeded"
        e.verify()
    finally:
        e.stop()


def t_prov_more_faults(build):
    """Every sandbox fault kind on the initiating call of each provider.
    Paystack and Flutterwave are queried by our own reference, so every
    kind ends in the sandbox's truth; Orange's lost inits end unknown."""
    e = Env(build, deadline_s=8, timeout_ms=1500)
    try:
        # warm Orange's token so that no fault is spent on it
        w = created(e.collect("orange", "o-warm"))
        assert e.wait_final(w["ref"])["state"] == "succeeded"
        pays = []
        # Orange's calls carry no MSISDN: one fault at a time, each
        # waited for until its charge exists at the sandbox (first: its
        # lost inits run into the deadline meanwhile)
        for i, fault in enumerate(FAULTS):
            r = {"provider": "orange", "op": "webpayment", "fault": fault,
                 "rate": 1.0, "count": 1}
            if fault == "delay":
                r["ms"] = 300
            e.sb.faults([r])
            p = created(e.collect("orange", "o-fault-%d" % i))
            end = time.time() + 10
            while not e.charges(p["reference"]) and time.time() < end:
                time.sleep(0.05)
            assert e.charges(p["reference"]), (fault, p)
            pays.append(("orange", fault, p))
        # Paystack and Flutterwave: one customer per fault kind, at once
        rules = []
        for i, fault in enumerate(FAULTS):
            for prov in ("paystack", "flutterwave"):
                r = {"provider": prov, "op": "charge", "fault": fault,
                     "rate": 1.0, "count": 1,
                     "msisdn": "2332412%05d" % (70000 + i)}
                if fault == "delay":
                    r["ms"] = 300
                rules.append(r)
        e.sb.faults(rules)
        for i, fault in enumerate(FAULTS):
            for prov in ("paystack", "flutterwave"):
                pays.append((prov, fault, created(e.collect(
                    prov, "%s-fault-%d" % (prov, i),
                    msisdn="2332412%05d" % (70000 + i)))))
        total = {"paystack": 0, "flutterwave": 0, "orange": 1500}
        for prov, fault, p in pays:
            f = e.wait_final(p["ref"], timeout=20)
            ch = e.charges(f["reference"])
            taken = [c for c in ch if c["state"] == "succeeded"]
            assert len(ch) == 1 and len(taken) == 1, (prov, fault, f, ch)
            if prov == "orange" and fault in ORANGE_LOST:
                assert f["state"] == "unknown" and f["txn_id"] == 0, (
                    fault, f)
                continue
            assert f["state"] == "succeeded", (prov, fault, f, ch)
            total[prov] += {"paystack": 2500, "flutterwave": 2550,
                            "orange": 1500}[prov]
        assert e.s.balance("merchant:G1") == "%d.%02d" % (
            total["paystack"] // 100, total["paystack"] % 100)
        assert e.s.balance("merchant:G2") == "%d.%02d" % (
            total["flutterwave"] // 100, total["flutterwave"] % 100)
        assert e.s.balance("merchant:X1") == str(total["orange"])
        e.verify()
    finally:
        e.stop()


TESTS = [t_paystack_otp, t_paystack_collection, t_flw_collection,
         t_orange_collection,
         t_prov_more_faults]
