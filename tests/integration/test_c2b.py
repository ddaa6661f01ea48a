"""test_c2b.py - M-Pesa C2B, end to end against soko-sandbox: sokod
registers its validation and confirmation URLs, a customer pays the
paybill (sandbox control API), the validation checks the account
reference against the merchant accounts, the confirmation is recorded and
then confirmed by Transaction Status before the money is posted; a
forged confirmation (right URL token, a receipt M-Pesa never issued)
moves nothing and ends unknown (docs/payments.md §C2B)."""
import json
import time

from test_disbursements import Env as DisbEnv
from test_providers import FINAL


def start(build, deadline_s=30):
    e = DisbEnv(build, deadline_s=deadline_s, extra=(("mpesa_c2b", "true"),))
    e.s.ctl("account", "create", "merchant:M7:payable", "merchant_payable",
            "KES")
    e.s.ctl("account", "create", "suspense:KES", "suspense", "KES")
    return e


def pay(e, bill_ref, amount="250", msisdn="254708374149"):
    """A customer pays the paybill; waits (bounded) for sokod to have
    registered its URLs."""
    end = time.time() + 20
    while True:
        try:
            return e.sb.ctl("POST", "/c2b/pay", {
                "shortcode": "174379", "msisdn": msisdn, "amount": amount,
                "bill_ref": bill_ref})
        except AssertionError as err:
            if "404" not in str(err) or time.time() > end:
                raise
            time.sleep(0.1)


def wait_final(e, ref, timeout=30):
    end = time.time() + timeout
    while True:
        st, _, data = e.s.request("GET", "/v1/payments/" + ref)
        if st == 200:
            p = json.loads(data)
            if p["state"] in FINAL or time.time() > end:
                return p
        elif time.time() > end:
            raise AssertionError("no payment %s: %d %s" % (ref, st, data))
        time.sleep(0.05)


def t_c2b_paybill(build):
    e = start(build)
    try:
        r = pay(e, "M7")
        assert r["result"] == "completed", r
        p = wait_final(e, "c2b:" + r["TransID"])
        assert p["state"] == "succeeded", p
        assert p["provider_reference"] == r["TransID"], p
        assert e.s.balance("merchant:M7:payable") == "250.00"
        # an account reference that names no merchant: rejected at
        # validation, the customer keeps the money
        r2 = pay(e, "NOPE")
        assert r2["result"] == "rejected", r2
        assert r2["validation"]["ResultCode"] == "C2B00012", r2
        st, _, _ = e.s.request("GET", "/v1/payments/c2b:" +
                               str(r2.get("TransID")))
        assert st == 404
        # the same confirmation again: one payment, one posting
        body = {"TransactionType": "Pay Bill", "TransID": r["TransID"],
                "TransTime": "20241201120000", "TransAmount": "250.00",
                "BusinessShortCode": "174379", "BillRefNumber": "M7",
                "InvoiceNumber": "", "OrgAccountBalance": "",
                "ThirdPartyTransID": "", "MSISDN": "254708374149",
                "FirstName": "J", "MiddleName": "", "LastName": ""}
        st, _, _ = e.s.request(
            "POST", "/v1/callbacks/paybill/confirm/" + e.token, body,
            auth=False)
        assert st == 200
        assert e.s.balance("merchant:M7:payable") == "250.00"
        # wrong token: no endpoint
        st, _, _ = e.s.request(
            "POST", "/v1/callbacks/paybill/confirm/" + "0" * 48, body,
            auth=False)
        assert st == 404
        e.verify()
    finally:
        e.stop()


def t_c2b_forged_confirmation(build):
    """A confirmation with the right URL token but a receipt M-Pesa never
    issued: recorded, never posted; Transaction Status does not know it,
    so at the deadline it is unknown, for reconciliation."""
    e = start(build, deadline_s=4)
    try:
        body = {"TransactionType": "Pay Bill", "TransID": "FORGED0001",
                "TransTime": "20241201120000", "TransAmount": "9999.00",
                "BusinessShortCode": "174379", "BillRefNumber": "M7",
                "InvoiceNumber": "", "OrgAccountBalance": "",
                "ThirdPartyTransID": "", "MSISDN": "254708374149",
                "FirstName": "X", "MiddleName": "", "LastName": ""}
        st, _, data = e.s.request(
            "POST", "/v1/callbacks/paybill/confirm/" + e.token, body,
            auth=False)
        assert st == 200, data
        p = wait_final(e, "c2b:FORGED0001", timeout=20)
        assert p["state"] == "unknown" and p["txn_id"] == 0, p
        assert e.s.balance("merchant:M7:payable") == "0.00"
        bad = dict(body, TransAmount="abc")
        st, _, _ = e.s.request(
            "POST", "/v1/callbacks/paybill/confirm/" + e.token, bad,
            auth=False)
        assert st == 400
        e.verify()
    finally:
        e.stop()


TESTS = [t_c2b_paybill, t_c2b_forged_confirmation]
