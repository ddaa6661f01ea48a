/*
 * svc_fee.h - fees and commissions of provider payments (docs/payments.md
 * §13): how much, exactly, in integers.
 *
 * Pure: no I/O.  A flow (collection, disbursement, bill) has one rule:
 * a fixed part plus a percentage in basis points (1/100 of a percent) of
 * the amount.  The fee is fixed when the payment is created (stored with
 * it), so a change of the schedule never changes a payment in flight, and
 * posted with the payment's success in the same ledger transaction.
 */
#ifndef SOKO_SVC_FEE_H
#define SOKO_SVC_FEE_H

#include <stdint.h>

#define SVC_FEE_BP_MAX 10000 /* 100% */

struct svc_fee_rule {
	int64_t fixed_minor; /* >= 0, minor units of the payment's currency */
	int64_t bp;          /* 0..SVC_FEE_BP_MAX */
};

/*
 * The fee on amount_minor (> 0): fixed + round_half_up(amount * bp /
 * 10000), computed without floating point.  Returns 0 with *fee, or -1
 * when the rule is out of range or the fee would exceed 10^15 minor
 * units (the largest amount soko takes): an error, never a wrapped
 * value.
 */
int svc_fee_compute(const struct svc_fee_rule *r, int64_t amount_minor,
                    int64_t *fee);

/*
 * The agent's share of fee: round_half_down(fee * share_bp / 10000), so
 * the share never exceeds the fee and the rest (fee - share) is never
 * negative.  share_bp in 0..10000 (else 0).
 */
int64_t svc_fee_share(int64_t fee_minor, int64_t share_bp);

#endif
