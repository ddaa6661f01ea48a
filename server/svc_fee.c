/*
 * svc_fee.c - fees and commissions (svc_fee.h).
 */
#include "svc_fee.h"

#define FEE_MAX 1000000000000000LL /* 10^15: MONEY's largest amount */

int
svc_fee_compute(const struct svc_fee_rule *r, int64_t amount_minor,
                int64_t *fee)
{
	__int128 pct;

	if (r->fixed_minor < 0 || r->fixed_minor > FEE_MAX || r->bp < 0 ||
	    r->bp > SVC_FEE_BP_MAX || amount_minor <= 0 ||
	    amount_minor > FEE_MAX)
		return -1;
	/* amount <= 10^15 and bp <= 10^4: the product fits 128 bits with
	 * room to spare; half up: + 5000 before the division */
	pct = ((__int128)amount_minor * r->bp + 5000) / 10000;
	if (pct + r->fixed_minor > FEE_MAX)
		return -1;
	*fee = (int64_t)pct + r->fixed_minor;
	return 0;
}

int64_t
svc_fee_share(int64_t fee_minor, int64_t share_bp)
{
	if (fee_minor <= 0 || share_bp <= 0 || share_bp > SVC_FEE_BP_MAX)
		return 0;
	/* half down (+ 4999): the agent never gets a unit the fee rounding
	 * did not earn */
	return (int64_t)(((__int128)fee_minor * share_bp + 4999) / 10000);
}
