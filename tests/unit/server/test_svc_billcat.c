/*
 * test_svc_billcat.c - Flutterwave bill categories as soko keeps them
 * (svc_bill.h §categories): reading the answer, skipping entries soko
 * could not send, the bound, item_code -> biller_code (unique, ambiguous,
 * unknown), the list's filters; and a request without biller_code.
 */
#include <string.h>

#include "check.h"
#include "json.h"
#include "svc_bill.h"

#define ENTRY(id, biller, item, country)                                     \
	"{\"id\":" #id ",\"biller_code\":\"" biller "\",\"name\":\"N" #id   \
	"\",\"default_commission\":0.02,\"date_added\":\"2018-07-03T00:00:00Z\"," \
	"\"country\":\"" country "\",\"is_airtime\":false,\"biller_name\":"  \
	"\"B\",\"item_code\":\"" item "\",\"short_name\":\"S\",\"fee\":0,"   \
	"\"commission_on_fee\":false,\"label_name\":\"Meter Number\","       \
	"\"amount\":100.5}"

static const char answer[] =
	"{\"status\":\"success\",\"message\":\"bill categories retrieval "
	"successful\",\"data\":[" ENTRY(1, "BIL112", "UB157", "NG") ","
	ENTRY(2, "BIL121", "CB141", "NG") "," ENTRY(3, "BIL200", "SHARED",
	                                            "NG") ","
	ENTRY(4, "BIL201", "SHARED", "GH") "," ENTRY(5, "BIL 1", "X1", "NG")
	"," ENTRY(6, "BIL300", "UB157", "NG") "]}";

static int
parse(const char *text, struct svc_bill_cat *out, size_t cap, size_t *n,
      size_t *skipped)
{
	static struct json_tok toks[512];
	struct json_doc doc;
	const char *why = NULL;

	if (json_parse(&doc, toks, 512, text, strlen(text), &why) != CODEC_OK)
		return -2;
	return svc_bill_cats_parse(&doc, out, cap, n, skipped, &why);
}

static void
test_parse_find(void)
{
	struct svc_bill_cat c[8];
	const struct svc_bill_cat *f;
	size_t n = 0, skipped = 0;
	bool amb;

	CHECK_EQ_INT(parse(answer, c, 8, &n, &skipped), 0);
	/* "BIL 1" cannot be sent: left out */
	CHECK_EQ_INT(n, 5);
	CHECK_EQ_INT(skipped, 1);
	CHECK_EQ_STR(c[0].biller_code, "BIL112");
	CHECK_EQ_STR(c[0].item_code, "UB157");
	CHECK_EQ_STR(c[0].label_name, "Meter Number");
	CHECK_EQ_INT(c[0].amount_minor, 10050);
	f = svc_bill_cat_find(c, n, "CB141", &amb);
	CHECK(f != NULL && !amb);
	if (f != NULL)
		CHECK_EQ_STR(f->biller_code, "BIL121");
	/* two billers list it: the caller must say which */
	CHECK(svc_bill_cat_find(c, n, "SHARED", &amb) == NULL);
	CHECK(amb);
	CHECK(svc_bill_cat_find(c, n, "UB157", &amb) == NULL);
	CHECK(amb);
	CHECK(svc_bill_cat_find(c, n, "NOPE", &amb) == NULL);
	CHECK(!amb);
	/* filters */
	CHECK(svc_bill_cat_match(&c[0], NULL, NULL));
	CHECK(svc_bill_cat_match(&c[0], "NG", "BIL112"));
	CHECK(!svc_bill_cat_match(&c[0], "GH", NULL));
	CHECK(!svc_bill_cat_match(&c[0], NULL, "BIL121"));
	CHECK(svc_bill_cat_match(&c[3], "GH", NULL));
	/* more entries than kept: refused whole, never cut silently */
	CHECK_EQ_INT(parse(answer, c, 5, &n, &skipped), -1);
	/* an error answer, or no data array */
	CHECK_EQ_INT(parse("{\"status\":\"error\",\"message\":\"no\","
	                   "\"data\":null}",
	                   c, 8, &n, &skipped),
	             -1);
	CHECK_EQ_INT(parse("{\"status\":\"success\",\"message\":\"x\"}", c, 8,
	                   &n, &skipped),
	             -1);
}

static void
test_request_without_biller(void)
{
	struct svc_bill_validate v;
	struct svc_error e;
	const char *no_biller = "{\"item_code\":\"UB157\","
	                        "\"customer\":\"45067198012\"}";
	const char *empty = "{\"item_code\":\"UB157\",\"biller_code\":\"\","
	                    "\"customer\":\"45067198012\"}";

	CHECK_EQ_INT(svc_bill_parse_validate(&v, no_biller, strlen(no_biller),
	                                     &e),
	             0);
	CHECK_EQ_STR(v.biller_code, "");
	CHECK_EQ_INT(svc_bill_parse_validate(&v, empty, strlen(empty), &e),
	             -1);
	CHECK_EQ_STR(e.code, "biller_code_invalid");
}

int
main(void)
{
	RUN(test_parse_find);
	RUN(test_request_without_biller);
	return check_report("svc_billcat");
}
