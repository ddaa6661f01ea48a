/*
 * net_fee.c - the fee of a provider payment being created (docs/payments.md
 * §13), on the storage worker: the schedule's rule for the payment's flow
 * (svc_fee.c computes), the fees_revenue account of its currency, and the
 * agent's commission for a bill paid from an agent float.  The result is
 * stored with the payment, so the schedule may change without changing a
 * payment in flight.
 */
#include <stdio.h>

#include "money.h"
#include "net_prov_int.h"
#include "svc_fee.h"

static enum store_rc
fee_setup(struct store *st, const struct config *cfg, struct store_prov *p,
          uint8_t source_type, struct svc_error *err)
{
	const struct currency *cur = money_currency_by_numeric(p->pay.currency);
	struct svc_fee_rule rule = {cfg->fee_collection_fixed,
	                            cfg->fee_collection_bp};
	struct ledger_account fees;
	char code[LEDGER_CODE_MAX + 1];
	enum store_rc rc;
	int64_t fee;

	err->code = NULL;
	p->fee_minor = p->fee_account_id = p->commission_minor = 0;
	if (p->kind == STORE_PROV_DISBURSE) {
		rule.fixed_minor = cfg->fee_disbursement_fixed;
		rule.bp = cfg->fee_disbursement_bp;
	} else if (p->kind == STORE_PROV_BILL) {
		rule.fixed_minor = cfg->fee_bill_fixed;
		rule.bp = cfg->fee_bill_bp;
	}
	if (svc_fee_compute(&rule, p->pay.amount_minor, &fee) != 0) {
		err->status = 422;
		err->code = "fee_overflow";
		err->message = "the fee on this amount is out of range";
		return STORE_OK;
	}
	if (fee == 0)
		return STORE_OK;
	if (p->kind == STORE_PROV_COLLECT && fee >= p->pay.amount_minor) {
		/* the merchant would get nothing, or owe */
		err->status = 422;
		err->code = "fee_exceeds_amount";
		err->message = "the collection's fee is not below its amount";
		return STORE_OK;
	}
	if (cur == NULL ||
	    (size_t)snprintf(code, sizeof code, "%s%s", cfg->fees_account_prefix,
	                     cur->alpha) >= sizeof code)
		goto misconfigured;
	rc = st->ops->account_by_code(st, code, &fees);
	if (rc == STORE_NOT_FOUND)
		goto misconfigured;
	if (rc != STORE_OK)
		return rc;
	if (fees.type != LEDGER_ACCT_FEES_REVENUE ||
	    fees.currency != p->pay.currency)
		goto misconfigured;
	p->fee_minor = fee;
	p->fee_account_id = fees.id;
	if (p->kind == STORE_PROV_BILL && source_type == LEDGER_ACCT_AGENT_FLOAT)
		p->commission_minor =
			svc_fee_share(fee, cfg->fee_bill_agent_share_bp);
	return STORE_OK;
misconfigured:
	p->fee_minor = p->fee_account_id = p->commission_minor = 0;
	err->status = 503;
	err->code = "provider_misconfigured";
	err->message = "a fee applies but the fees account (fees_account_prefix "
	               "+ currency, a fees_revenue account in the payment's "
	               "currency) is missing";
	return STORE_OK;
}

bool
prov_fee_refused(struct store *st, const struct config *cfg,
                 struct store_prov *p, uint8_t source_type, int *status,
                 const char **code, const char **msg, enum store_rc *rc)
{
	struct svc_error e;

	*rc = fee_setup(st, cfg, p, source_type, &e);
	if (*rc != STORE_OK || e.code == NULL)
		return *rc != STORE_OK;
	*status = e.status;
	*code = e.code;
	*msg = e.message;
	return true;
}
