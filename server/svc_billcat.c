/*
 * svc_billcat.c - Flutterwave bill categories as soko keeps them
 * (svc_bill.h §categories): read from the provider's answer, looked up by
 * item code, filtered for the list.  Pure; a file of its own because it
 * reads the answer with protocols/json.h, which cannot share a unit with
 * jansson (svc_bill.c's request parser).
 */
#include <string.h>

#include "prov.h"
#include "prov_flw.h"
#include "svc_bill.h"
#include "util.h"

#define CODE_SET                                                             \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

/* ---- categories (GET /v3/bill-categories) ---- */

static void
copy_text(char *dst, size_t cap, const char *src)
{
	strlcpy_s(dst, src, cap); /* a long name is cut, never refused */
}

int
svc_bill_cats_parse(const struct json_doc *doc, struct svc_bill_cat *out,
                    size_t cap, size_t *n, size_t *skipped,
                    const char **why)
{
	struct flw_bill_category c;
	struct prov_err e;
	size_t arr, n_items, it;

	*n = *skipped = 0;
	if (flw_bill_categories_parse(doc, &arr, &n_items, &e) != PROV_OK) {
		*why = "not a bill categories answer";
		return -1;
	}
	if (n_items > cap) {
		*why = "more bill categories than soko keeps";
		return -1;
	}
	for (it = json_first(doc, arr); it != 0; it = json_next(doc, arr, it)) {
		struct svc_bill_cat *o = &out[*n];

		if (flw_bill_category_parse(&c, doc, it, &e) != PROV_OK ||
		    !svc_admin_all_of(c.item_code, CODE_SET, 1, STORE_BILL_CODE_MAX) ||
		    !svc_admin_all_of(c.biller_code, CODE_SET, 1,
	                      STORE_BILL_CODE_MAX)) {
			/* an entry soko could not use in a request */
			(*skipped)++;
			continue;
		}
		memset(o, 0, sizeof *o);
		copy_text(o->biller_code, sizeof o->biller_code, c.biller_code);
		copy_text(o->item_code, sizeof o->item_code, c.item_code);
		copy_text(o->name, sizeof o->name, c.name);
		copy_text(o->biller_name, sizeof o->biller_name, c.biller_name);
		copy_text(o->short_name, sizeof o->short_name, c.short_name);
		copy_text(o->label_name, sizeof o->label_name, c.label_name);
		copy_text(o->country, sizeof o->country, c.country);
		o->is_airtime = c.is_airtime;
		o->amount_minor = c.amount_minor;
		o->fee_minor = c.fee_minor;
		(*n)++;
	}
	return 0;
}

const struct svc_bill_cat *
svc_bill_cat_find(const struct svc_bill_cat *c, size_t n,
                  const char *item_code, bool *ambiguous)
{
	const struct svc_bill_cat *found = NULL;
	size_t i;

	*ambiguous = false;
	for (i = 0; i < n; i++) {
		if (strcmp(c[i].item_code, item_code) != 0)
			continue;
		if (found != NULL &&
		    strcmp(found->biller_code, c[i].biller_code) != 0) {
			*ambiguous = true;
			return NULL;
		}
		found = &c[i];
	}
	return found;
}

bool
svc_bill_cat_match(const struct svc_bill_cat *c, const char *country,
                   const char *biller_code)
{
	return (country == NULL || strcmp(c->country, country) == 0) &&
	       (biller_code == NULL || strcmp(c->biller_code, biller_code) == 0);
}
