/*
 * test_prov_mpesa.c - unit tests for protocols/prov_mpesa.c against the
 * documented Daraja samples (reference/wire-formats.md §1, copied below
 * verbatim): the STK password formula, builders reproducing the request
 * samples byte for byte, parsers reading the response and callback
 * samples, every truncation of every sample (refused by json_parse), the
 * malformed variants (duplicate keys, nesting, wrong types, amounts as
 * strings, invalid UTF-8, missing fields) with their specific errors, and
 * parse(build(x)) round trips.
 */
#include "prov_mpesa.h"

#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "check.h"

#define PASSKEY                                                                \
	"bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"

/* ---- the documented samples (wire-formats.md §1) ---------------------- */

static const char stk_req[] =
    "{\n"
    "  \"BusinessShortCode\": 174379,\n"
    "  \"Password\": "
    "\"MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4"
    "ZTZiNzJhZGExZWQyYzkxOTIwMjEwNjI4MDkyNDA4\",\n"
    "  \"Timestamp\": \"20210628092408\",\n"
    "  \"TransactionType\": \"CustomerPayBillOnline\",\n"
    "  \"Amount\": \"1\",\n"
    "  \"PartyA\": \"254722000000\",\n"
    "  \"PartyB\": \"174379\",\n"
    "  \"PhoneNumber\": \"254722111111\",\n"
    "  \"CallBackURL\": \"https://mydomain.com/path\",\n"
    "  \"AccountReference\": \"accountref\",\n"
    "  \"TransactionDesc\": \"txndesc\"\n"
    "}";

static const char stk_resp[] =
    "{\"MerchantRequestID\":\"2654-4b64-97ff-b827b542881d3130\",\n"
    " \"CheckoutRequestID\":\"ws_CO_1007202409152617172396192\",\n"
    " \"ResponseCode\":\"0\",\n"
    " \"ResponseDescription\":\"Success. Request accepted for processing\",\n"
    " \"CustomerMessage\":\"Success. Request accepted for processing\"}";

static const char stk_cb_ok[] =
    "{\"Body\":{\"stkCallback\":{\n"
    "  \"MerchantRequestID\":\"29115-34620561-1\",\n"
    "  \"CheckoutRequestID\":\"ws_CO_191220191020363925\",\n"
    "  \"ResultCode\":0,\n"
    "  \"ResultDesc\":\"The service request is processed successfully.\",\n"
    "  \"CallbackMetadata\":{\"Item\":[\n"
    "    {\"Name\":\"Amount\",\"Value\":1.00},\n"
    "    {\"Name\":\"MpesaReceiptNumber\",\"Value\":\"NLJ7RT61SV\"},\n"
    "    {\"Name\":\"TransactionDate\",\"Value\":20191219102115},\n"
    "    {\"Name\":\"PhoneNumber\",\"Value\":254708374149}]}}}}";

static const char stk_cb_fail[] =
    "{\"Body\":{\"stkCallback\":{\"MerchantRequestID\":\"f1e2-4b95-a71d-"
    "b30d3cdbb7a7942864\",\n"
    " \"CheckoutRequestID\":\"ws_CO_21072024125243250722943992\","
    "\"ResultCode\":1032,\n"
    " \"ResultDesc\":\"Request cancelled by user\"}}}";

static const char stk_query_resp[] =
    "{\"ResponseCode\":\"0\",\"ResponseDescription\":\"The service request has "
    "been accepted successfully\",\n"
    " \"MerchantRequestID\":\"22205-34066-1\",\"CheckoutRequestID\":\"ws_CO_"
    "13012021093521236557\",\n"
    " \"ResultCode\":\"0\",\"ResultDesc\":\"The service request is processed "
    "successfully.\"}";

static const char err_resp[] =
    "{\"requestId\":\"1c5b-4ba8-815c-ac45c57a3db01495926\",\"errorCode\":\"400."
    "002.02\",\"errorMessage\":\"Bad Request - Invalid BusinessShortCode\"}";

static const char query_pending[] =
    "{\"requestId\":\"ws_CO_20022018230142206\",\"errorCode\":\"500.001.1001\","
    "\"errorMessage\":\"The transaction is being processed\"}";

static const char c2b_register[] =
    "{\"ShortCode\":\"600984\",\"ResponseType\":\"Completed\","
    "\"ConfirmationURL\":\"https://x/confirm\",\"ValidationURL\":\"https://x/"
    "validate\"}";

static const char c2b_cb[] =
    "{\"TransactionType\":\"Pay "
    "Bill\",\"TransID\":\"RKL51ZDR4F\",\"TransTime\":\"20231121121325\",\n"
    " \"TransAmount\":\"5.00\",\"BusinessShortCode\":\"600966\","
    "\"BillRefNumber\":\"Sample Transaction\",\n"
    " \"InvoiceNumber\":\"\",\"OrgAccountBalance\":\"25.00\","
    "\"ThirdPartyTransID\":\"\",\n"
    " \"MSISDN\":\"2547 ***** "
    "126\",\"FirstName\":\"JOHN\",\"MiddleName\":\"\",\"LastName\":\"\"}";

static const char b2c_req[] =
    "{\"OriginatorConversationID\":\"600997_Test_32et3241ed8yu\","
    "\"InitiatorName\":\"testapi\",\n"
    " \"SecurityCredential\":\"<base64 "
    "RSA>\",\"CommandID\":\"BusinessPayment\",\"Amount\":\"10\",\n"
    " \"PartyA\":\"600992\",\"PartyB\":\"254705912645\",\"Remarks\":"
    "\"remarked\",\n"
    " \"QueueTimeOutURL\":\"https://mydomain.com/path\",\"ResultURL\":\"https:/"
    "/mydomain.com/path\",\n"
    " \"Occassion\":\"ChristmasPay\"}";

static const char b2c_resp[] =
    "{\"ConversationID\":\"AG_20240706_20106e9209f64bebd05b\","
    "\"OriginatorConversationID\":\"600997_Test_32et3241ed8yu\",\n"
    " \"ResponseCode\":\"0\",\"ResponseDescription\":\"Accept the service "
    "request successfully.\"}";

static const char b2c_ok[] =
    "{\"Result\":{\"ResultType\":0,\"ResultCode\":0,\"ResultDesc\":\"The "
    "service request is processed successfully.\",\n"
    " \"OriginatorConversationID\":\"53e3-4aa8-9fe0-8fb5e4092cdd3533373\",\n"
    " \"ConversationID\":\"AG_20240706_2010364430d9bbdaf872\","
    "\"TransactionID\":\"SG632NMUAB\",\n"
    " \"ResultParameters\":{\"ResultParameter\":[\n"
    "   {\"Key\":\"TransactionAmount\",\"Value\":10},\n"
    "   {\"Key\":\"TransactionReceipt\",\"Value\":\"SG632NMUAB\"},\n"
    "   {\"Key\":\"ReceiverPartyPublicName\",\"Value\":\"254705912645 - JOHN "
    "DOE\"},\n"
    "   {\"Key\":\"TransactionCompletedDateTime\",\"Value\":\"06.07.2024 "
    "22:48:52\"},\n"
    "   {\"Key\":\"B2CUtilityAccountAvailableFunds\",\"Value\":8959269.60},\n"
    "   {\"Key\":\"B2CWorkingAccountAvailableFunds\",\"Value\":1199371.00},\n"
    "   {\"Key\":\"B2CRecipientIsRegisteredCustomer\",\"Value\":\"Y\"},\n"
    "   "
    "{\"Key\":\"B2CChargesPaidAccountAvailableFunds\",\"Value\":-1980.00}]},\n"
    " \"ReferenceData\":{\"ReferenceItem\":{\"Key\":\"QueueTimeoutURL\",\n"
    "   "
    "\"Value\":\"https://internalsandbox.safaricom.co.ke/mpesa/b2cresults/v1/"
    "submit\"}}}}";

static const char b2c_fail[] =
    "{\"Result\":{\"ResultType\":0,\"ResultCode\":2001,\"ResultDesc\":\"The "
    "initiator information is invalid.\",\n"
    " \"OriginatorConversationID\":\"53e3-...\",\"ConversationID\":\"AG_"
    "20240707_201062f6f6f5804f7a33\",\n"
    " \"TransactionID\":\"SG722NMVXQ\",\"ReferenceData\":{\"ReferenceItem\":{"
    "\"Key\":\"QueueTimeoutURL\",\"Value\":\"https://"
    "internalsandbox.safaricom.co.ke/mpesa/b2cresults/v1/submit\"}}}}";

/* Daraja's reversal documentation's request (docs/providers.md §M-Pesa
 * reversal), its "RecieverIdentifierType" spelling included */
static const char reversal_req[] =
    "{\"Initiator\":\"apiop37\",\"SecurityCredential\":\"<b64>\","
    "\"CommandID\":\"TransactionReversal\",\"TransactionID\":\"PDU91HIVIT\","
    "\"Amount\":\"200\",\"ReceiverParty\":\"603021\","
    "\"RecieverIdentifierType\":\"11\",\"ResultURL\":"
    "\"https://mydomain.com/reversal/result\",\"QueueTimeOutURL\":"
    "\"https://mydomain.com/reversal/queue\",\"Remarks\":\"Payment "
    "reversal\"}";

static const char reversal_ok[] =
    "{\"Result\":{\"ResultType\":0,\"ResultCode\":0,\"ResultDesc\":"
    "\"The service request is processed successfully.\","
    "\"OriginatorConversationID\":\"AG_1\",\"ConversationID\":\"AG_2\","
    "\"TransactionID\":\"QFE8K2ZJWB\",\"ResultParameters\":{"
    "\"ResultParameter\":[{\"Key\":\"DebitAccountBalance\",\"Value\":"
    "\"Utility Account|KES|0.00|0.00|0.00|0.00\"},{\"Key\":\"Amount\","
    "\"Value\":200.0},{\"Key\":\"OriginalTransactionID\",\"Value\":"
    "\"PDU91HIVIT\"},{\"Key\":\"Charge\",\"Value\":0.0}]}}}";

static const char reversal_failed[] =
    "{\"Result\":{\"ResultType\":0,\"ResultCode\":\"R000002\","
    "\"ResultDesc\":\"The OriginalTransactionID is invalid.\","
    "\"OriginatorConversationID\":\"AG_1\",\"ConversationID\":\"AG_2\","
    "\"TransactionID\":\"QFE0000000\"}}";

static const char reversal_no_amount[] =
    "{\"Result\":{\"ResultType\":0,\"ResultCode\":0,\"ResultDesc\":\"x\","
    "\"OriginatorConversationID\":\"AG_1\",\"ConversationID\":\"AG_2\","
    "\"TransactionID\":\"QFE8K2ZJWB\",\"ResultParameters\":{"
    "\"ResultParameter\":[{\"Key\":\"OriginalTransactionID\",\"Value\":"
    "\"PDU91HIVIT\"}]}}}";

static const char status_req[] =
    "{\"Initiator\":\"testapiuser\",\"SecurityCredential\":\"<b64>\","
    "\"CommandID\":\"TransactionStatusQuery\",\n"
    " \"TransactionID\":\"NEF61H8J60\",\"OriginalConversationID\":\"7071-4170-"
    "a0e5-8345632bad442144258\",\n"
    " \"PartyA\":\"600782\",\"IdentifierType\":\"4\",\"ResultURL\":\"http://"
    "myservice:8080/transactionstatus/result\",\n"
    " \"QueueTimeOutURL\":\"http://myservice:8080/"
    "timeout\",\"Remarks\":\"OK\",\"Occasion\":\"OK\"}";

static const char balance_result[] =
    "{\"Result\":{\"ResultType\":\"0\",\"ResultCode\":\"0\",\"ResultDesc\":"
    "\"The service request is processed successfully\",\n"
    " \"OriginatorConversationID\":\"16917-22577599-3\",\"ConversationID\":"
    "\"AG_20200206_00005e091a8ec6b9eac5\",\n"
    " \"TransactionID\":\"OA90000000\",\"ResultParameters\":{"
    "\"ResultParameter\":[\n"
    "  {\"Key\":\"AccountBalance\",\"Value\":\"Working "
    "Account|KES|700000.00|700000.00|0.00|0.00&Float "
    "Account|KES|0.00|0.00|0.00|0.00&Utility "
    "Account|KES|228037.00|228037.00|0.00|0.00&Charges Paid "
    "Account|KES|-1540.00|-1540.00|0.00|0.00&Organization Settlement "
    "Account|KES|0.00|0.00|0.00|0.00\"},\n"
    "  {\"Key\":\"BOCompletedTime\",\"Value\":\"20200109125710\"}]},\n"
    " \"ReferenceData\":{\"ReferenceItem\":{\"Key\":\"QueueTimeoutURL\","
    "\"Value\":\"https://internalsandbox.safaricom.co.ke/mpesa/abresults/v1/"
    "submit\"}}}}";

/* Not a documented sample: the status result keys of wire-formats §1.7
 * (values invented), with the v1 "Conversation ID" spacing. */
static const char status_result[] =
    "{\"Result\":{\"ResultType\":0,\"ResultCode\":0,\"ResultDesc\":\"The "
    "service request is processed successfully.\","
    "\"OriginatorConversationID\":\"7071-4170\",\"ConversationID\":\"AG_1\","
    "\"TransactionID\":\"NEF61H8J60\","
    "\"ResultParameters\":{\"ResultParameter\":["
    "{\"Key\":\"DebitPartyName\",\"Value\":\"600782 - Org\"},"
    "{\"Key\":\"CreditPartyName\",\"Value\":\"254708374149 - JOHN DOE\"},"
    "{\"Key\":\"Originator Conversation ID\",\"Value\":\"7071-4170\"},"
    "{\"Key\":\"InitiatedTime\",\"Value\":20191219102115},"
    "{\"Key\":\"DebitPartyCharges\",\"Value\":\"Fee For B2C "
    "Payment|KES|22.40\"},"
    "{\"Key\":\"TransactionReason\"},"
    "{\"Key\":\"TransactionStatus\",\"Value\":\"Completed\"},"
    "{\"Key\":\"FinalisedTime\",\"Value\":20191219102120},"
    "{\"Key\":\"Amount\",\"Value\":300},"
    "{\"Key\":\"ReceiptNo\",\"Value\":\"NEF61H8J60\"}]},"
    "\"ReferenceData\":{\"ReferenceItem\":{\"Key\":\"Occasion\"}}}}";

static const char *const samples[] = {
    stk_req,        stk_resp,   stk_cb_ok,      stk_cb_fail,
    stk_query_resp, err_resp,   query_pending,  c2b_register,
    c2b_cb,         b2c_req,    b2c_resp,       b2c_ok,
    b2c_fail,       status_req, balance_result, status_result,
};

static struct json_tok toks[512];
static struct json_doc doc;

static int
load(const char *s)
{
	const char *why = NULL;

	/* Callers CHECK the result; variants that must not parse expect -1. */
	return json_parse(&doc, toks, 512, s, strlen(s), &why) == CODEC_OK ? 0
	                                                                   : -1;
}

/* Whitespace outside strings removed: the builders write compact JSON. */
static void
compact(char *out, const char *in)
{
	int is_str = 0;

	for (; *in; in++) {
		if (*in == '"' && (in[-1] != '\\'))
			is_str = !is_str;
		if (!is_str && (*in == ' ' || *in == '\n'))
			continue;
		*out++ = *in;
	}
	*out = '\0';
}

/* ---- password, timestamps -------------------------------------------- */

static void
test_password(void)
{
	char pw[256];
	size_t n;
	const char *why;

	CHECK(mpesa_stk_password(pw, sizeof pw, "174379", PASSKEY,
	                         "20210628092408", &n, &why) == CODEC_OK);
	CHECK_EQ_STR(pw, "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2Qy"
	                 "ZTBjODkzMDU5YjEwZjc4ZTZiNzJhZGExZWQyYzkxOTIwMjEwNjI4"
	                 "MDkyNDA4");
	CHECK(mpesa_stk_password(pw, 10, "174379", PASSKEY, "20210628092408",
	                         &n, &why) == CODEC_NEED_MORE);
	CHECK_EQ_INT(n, 113);
	CHECK(mpesa_stk_password(pw, sizeof pw, "17437a", PASSKEY,
	                         "20210628092408", &n, &why) == CODEC_BAD);
	CHECK(mpesa_stk_password(pw, sizeof pw, "174379", PASSKEY,
	                         "20211328092408", &n, &why) == CODEC_BAD);
	CHECK(mpesa_stk_password(pw, sizeof pw, "174379", PASSKEY,
	                         "2021062809240", &n, &why) == CODEC_BAD);
	CHECK(mpesa_stk_password(pw, sizeof pw, "174379", "", "20210628092408",
	                         &n, &why) == CODEC_BAD);
	CHECK(mpesa_stk_password(pw, sizeof pw, "174379", "a b",
	                         "20210628092408", &n, &why) == CODEC_BAD);
}

static void
test_timestamp(void)
{
	char ts[15];

	/* 2021-06-28 06:24:08 UTC is 09:24:08 EAT. */
	CHECK(mpesa_timestamp(ts, sizeof ts, 1624861448000LL, 3 * 3600) ==
	      CODEC_OK);
	CHECK_EQ_STR(ts, "20210628092408");
	CHECK(mpesa_timestamp(ts, sizeof ts, 0, 0) == CODEC_OK);
	CHECK_EQ_STR(ts, "19700101000000");
	CHECK(mpesa_timestamp(ts, sizeof ts, -1, 0) == CODEC_OK);
	CHECK_EQ_STR(ts, "19691231235959");
	/* 2024-02-29 23:59:59 UTC + 3 h crosses into March. */
	CHECK(mpesa_timestamp(ts, sizeof ts, 1709251199000LL, 3 * 3600) ==
	      CODEC_OK);
	CHECK_EQ_STR(ts, "20240301025959");
	CHECK(mpesa_timestamp(ts, 14, 0, 0) == CODEC_NEED_MORE);
	CHECK(mpesa_timestamp(ts, sizeof ts, INT64_MAX, 0) == CODEC_BAD);
	CHECK(mpesa_timestamp(ts, sizeof ts, INT64_MIN, 0) == CODEC_BAD);
}

/* ---- every sample parses, every truncation fails ----------------------- */

static void
test_samples_truncated(void)
{
	size_t i, n;

	for (i = 0; i < sizeof samples / sizeof samples[0]; i++) {
		size_t len = strlen(samples[i]);

		CHECK(load(samples[i]) == 0);
		for (n = 0; n < len; n++) {
			const char *why = NULL;
			char *buf = malloc(n + 1);

			memcpy(buf, samples[i], n);
			CHECK(json_parse(&doc, toks, 512, buf, n, &why) ==
			      CODEC_BAD);
			CHECK(why != NULL);
			free(buf);
		}
	}
}

/* ---- STK push ---------------------------------------------------------- */

/* OAuth answer: expires_in as the Daraja 3.0 number and the v1 string
 * (wire-formats §1.1: both documented) */
static void
test_token(void)
{
	struct mpesa_token t;
	struct mpesa_err e;

	CHECK(load("{\"access_token\":\"c9SQxWWhmdVRlyh0zh8gZDTkubVF\","
	           "\"expires_in\":3599}") == 0);
	CHECK(mpesa_token_parse(&t, &doc, &e) == MPESA_OK);
	CHECK_EQ_STR(t.access_token, "c9SQxWWhmdVRlyh0zh8gZDTkubVF");
	CHECK(t.expires_in_s == 3599);
	CHECK(load("{\"access_token\":\"x\",\"expires_in\":\"3599\"}") ==
	      0);
	CHECK(mpesa_token_parse(&t, &doc, &e) == MPESA_OK);
	CHECK(t.expires_in_s == 3599);
	CHECK(load("{\"access_token\":\"\",\"expires_in\":3599}") == 0);
	CHECK(mpesa_token_parse(&t, &doc, &e) == MPESA_BAD_VALUE);
	CHECK(load("{\"access_token\":\"x\",\"expires_in\":0}") == 0);
	CHECK(mpesa_token_parse(&t, &doc, &e) == MPESA_BAD_VALUE);
	CHECK(load("{\"access_token\":\"x\",\"expires_in\":\"soon\"}") ==
	      0);
	CHECK(mpesa_token_parse(&t, &doc, &e) == MPESA_BAD_VALUE);
	CHECK(load("{\"access_token\":\"x\"}") == 0);
	CHECK(mpesa_token_parse(&t, &doc, &e) == MPESA_MISSING);
	CHECK_EQ_STR(e.field, "expires_in");
	CHECK(load("{\"access_token\":7,\"expires_in\":1}") == 0);
	CHECK(mpesa_token_parse(&t, &doc, &e) == MPESA_WRONG_TYPE);
}

static struct mpesa_stk_push_req
stk_sample_req(void)
{
	struct mpesa_stk_push_req r;

	r.short_code = "174379";
	r.passkey = PASSKEY;
	r.timestamp = "20210628092408";
	r.type = MPESA_STK_PAYBILL;
	r.amount_minor = 100;
	r.party_a = "254722000000";
	r.party_b = "174379";
	r.phone = "254722111111";
	r.callback_url = "https://mydomain.com/path";
	r.account_ref = "accountref";
	r.desc = "txndesc";
	return r;
}

static void
test_stk_push_build(void)
{
	struct mpesa_stk_push_req r = stk_sample_req();
	char out[1024], want[1024];
	size_t n, need;
	const char *why;

	compact(want, stk_req);
	CHECK(mpesa_stk_push_build(out, sizeof out, &r, &n, &why) == CODEC_OK);
	CHECK_EQ_STR(out, want);
	CHECK(mpesa_stk_push_build(out, 10, &r, &need, &why) ==
	      CODEC_NEED_MORE);
	CHECK_EQ_INT(need, n + 1);
	CHECK(mpesa_stk_push_build(out, need, &r, &n, &why) == CODEC_OK);
	/* Round trip: the built body parses back to the inputs. */
	CHECK(load(out) == 0);
	CHECK(json_str_eq(&doc, json_obj_get(&doc, 0, "AccountReference"),
	                  "accountref"));
	{
		int64_t a;

		CHECK(json_num_to_minor(
			  json_span(&doc, json_obj_get(&doc, 0, "Amount")), 2,
			  &a, &why) == CODEC_OK);
		CHECK_EQ_INT(a, 100);
	}
	r.type = MPESA_STK_BUYGOODS;
	r.desc = NULL;
	r.amount_minor = 25000000;
	CHECK(mpesa_stk_push_build(out, sizeof out, &r, &n, &why) == CODEC_OK);
	CHECK(strstr(out, "\"CustomerBuyGoodsOnline\"") != NULL);
	CHECK(strstr(out, "\"Amount\":\"250000\"") != NULL);
	CHECK(strstr(out, "TransactionDesc") == NULL);
	/* Documented rules. */
	r = stk_sample_req();
	r.amount_minor = 150;
	CHECK(mpesa_stk_push_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
	r.amount_minor = 0;
	CHECK(mpesa_stk_push_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
	r = stk_sample_req();
	r.account_ref = "1234567890123";
	CHECK(mpesa_stk_push_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
	r = stk_sample_req();
	r.desc = "12345678901234";
	CHECK(mpesa_stk_push_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
	r = stk_sample_req();
	r.short_code = "074379";
	CHECK(mpesa_stk_push_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
	r = stk_sample_req();
	r.phone = "+254722111111";
	CHECK(mpesa_stk_push_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
	r = stk_sample_req();
	r.account_ref = "a\xc0\xaf";
	CHECK(mpesa_stk_push_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
	r = stk_sample_req();
	r.timestamp = "2021-06-28 09:";
	CHECK(mpesa_stk_push_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
}

static void
test_stk_push_resp(void)
{
	struct mpesa_stk_push_resp r;
	struct mpesa_err e;

	CHECK(load(stk_resp) == 0);
	CHECK(mpesa_stk_push_resp_parse(&r, &doc, &e) == MPESA_OK);
	CHECK_EQ_STR(r.merchant_request_id, "2654-4b64-97ff-b827b542881d3130");
	CHECK_EQ_STR(r.checkout_request_id, "ws_CO_1007202409152617172396192");
	CHECK(mpesa_code_is_zero(&r.response_code));
	CHECK_EQ_STR(r.response_desc,
	             "Success. Request accepted for processing");
	CHECK_EQ_STR(r.customer_message,
	             "Success. Request accepted for processing");

	CHECK(load("{\"MerchantRequestID\":\"a\",\"ResponseCode\":\"0\"}") ==
	      0);
	CHECK(mpesa_stk_push_resp_parse(&r, &doc, &e) == MPESA_MISSING);
	CHECK_EQ_STR(e.field, "CheckoutRequestID");
	CHECK(load("{\"MerchantRequestID\":1,\"CheckoutRequestID\":\"b\"}") ==
	      0);
	CHECK(mpesa_stk_push_resp_parse(&r, &doc, &e) == MPESA_WRONG_TYPE);
	CHECK_EQ_STR(e.field, "MerchantRequestID");
	CHECK(load("[]") == 0);
	CHECK(mpesa_stk_push_resp_parse(&r, &doc, &e) == MPESA_WRONG_TYPE);
}

static void
test_error_resp(void)
{
	struct mpesa_error_resp r;
	struct mpesa_err e;

	CHECK(load(err_resp) == 0);
	CHECK(mpesa_error_resp_parse(&r, &doc, &e) == MPESA_OK);
	CHECK_EQ_STR(r.error_code, "400.002.02");
	CHECK_EQ_STR(r.error_message,
	             "Bad Request - Invalid BusinessShortCode");
	CHECK_EQ_STR(r.request_id, "1c5b-4ba8-815c-ac45c57a3db01495926");
	CHECK(load(query_pending) == 0);
	CHECK(mpesa_error_resp_parse(&r, &doc, &e) == MPESA_OK);
	CHECK_EQ_STR(r.error_code, "500.001.1001");
	CHECK_EQ_STR(r.error_message, "The transaction is being processed");
	CHECK(load("{\"errorMessage\":\"x\"}") == 0);
	CHECK(mpesa_error_resp_parse(&r, &doc, &e) == MPESA_MISSING);
	CHECK_EQ_STR(e.field, "errorCode");
}

static void
test_stk_callback(void)
{
	struct mpesa_stk_callback cb;
	struct mpesa_err e;

	CHECK(load(stk_cb_ok) == 0);
	CHECK(mpesa_stk_callback_parse(&cb, &doc, &e) == MPESA_OK);
	CHECK_EQ_STR(cb.merchant_request_id, "29115-34620561-1");
	CHECK_EQ_STR(cb.checkout_request_id, "ws_CO_191220191020363925");
	CHECK(mpesa_code_is_zero(&cb.result_code));
	CHECK_EQ_STR(cb.result_code.text, "0");
	CHECK(cb.has_metadata && cb.has_amount);
	CHECK_EQ_INT(cb.amount_minor, 100);
	CHECK_EQ_STR(cb.receipt, "NLJ7RT61SV");
	CHECK_EQ_STR(cb.transaction_date, "20191219102115");
	CHECK_EQ_STR(cb.phone, "254708374149");

	CHECK(load(stk_cb_fail) == 0);
	CHECK(mpesa_stk_callback_parse(&cb, &doc, &e) == MPESA_OK);
	CHECK(!cb.has_metadata && !cb.has_amount);
	CHECK(cb.result_code.is_num);
	CHECK_EQ_INT(cb.result_code.num, 1032);
	CHECK_EQ_STR(cb.result_desc, "Request cancelled by user");
	CHECK_EQ_STR(cb.receipt, "");
}

/* The success callback with one substring replaced. */
static int
cb_variant(const char *from, const char *to, enum mpesa_rc want,
           const char *field)
{
	static char buf[4096];
	const char *p = strstr(stk_cb_ok, from);
	struct mpesa_stk_callback cb;
	struct mpesa_err e = {NULL, NULL};
	enum mpesa_rc rc;
	size_t k;

	if (p == NULL)
		return -1;
	k = (size_t)(p - stk_cb_ok);
	memcpy(buf, stk_cb_ok, k);
	memcpy(buf + k, to, strlen(to));
	memcpy(buf + k + strlen(to), p + strlen(from),
	       strlen(p + strlen(from)) + 1);
	if (load(buf) != 0)
		return -1;
	rc = mpesa_stk_callback_parse(&cb, &doc, &e);
	if (rc != want || (field != NULL &&
	                   (e.field == NULL || strcmp(e.field, field) != 0))) {
		fprintf(stderr, "  variant %s -> %s: rc %d field %s why %s\n",
		        from, to, rc, e.field ? e.field : "-",
		        e.why ? e.why : "-");
		return -1;
	}
	return 0;
}

#define IT "Body.stkCallback.CallbackMetadata.Item"

static void
test_stk_callback_malformed(void)
{
	/* Amounts as strings, wrong types. */
	CHECK(cb_variant("\"Value\":1.00", "\"Value\":\"1.00\"",
	                 MPESA_WRONG_TYPE, IT "[Amount].Value") == 0);
	CHECK(cb_variant("\"Value\":1.00", "\"Value\":1.005", MPESA_BAD_VALUE,
	                 IT "[Amount].Value") == 0);
	CHECK(cb_variant("\"Value\":1.00", "\"Value\":0", MPESA_BAD_VALUE,
	                 IT "[Amount].Value") == 0);
	CHECK(cb_variant("\"Value\":1.00", "\"Value\":1e400", MPESA_BAD_VALUE,
	                 IT "[Amount].Value") == 0);
	CHECK(cb_variant("\"Value\":1.00", "\"Value\":1.5e2", MPESA_OK, NULL) ==
	      0);
	CHECK(cb_variant("\"ResultCode\":0", "\"ResultCode\":null",
	                 MPESA_WRONG_TYPE, "Body.stkCallback.ResultCode") == 0);
	CHECK(cb_variant("\"ResultCode\":0", "\"ResultCode\":0.5",
	                 MPESA_BAD_VALUE, "Body.stkCallback.ResultCode") == 0);
	CHECK(cb_variant("\"ResultCode\":0,", "", MPESA_MISSING,
	                 "Body.stkCallback.ResultCode") == 0);
	CHECK(cb_variant("\"ResultCode\":0", "\"ResultCode\":\"0\"", MPESA_OK,
	                 NULL) == 0);
	CHECK(cb_variant("\"ResultCode\":0", "\"ResultCode\":\"SFC_IC0003\"",
	                 MPESA_OK, NULL) == 0);
	CHECK(cb_variant("\"Value\":20191219102115",
	                 "\"Value\":\"20191219102115\"", MPESA_WRONG_TYPE,
	                 IT "[TransactionDate].Value") == 0);
	CHECK(cb_variant("\"Value\":20191219102115", "\"Value\":20191319102115",
	                 MPESA_BAD_VALUE, IT "[TransactionDate].Value") == 0);
	CHECK(cb_variant("\"Value\":254708374149", "\"Value\":\"254708374149\"",
	                 MPESA_WRONG_TYPE, IT "[PhoneNumber].Value") == 0);
	CHECK(cb_variant("\"Value\":\"NLJ7RT61SV\"", "\"Value\":12",
	                 MPESA_WRONG_TYPE,
	                 IT "[MpesaReceiptNumber].Value") == 0);
	CHECK(cb_variant("{\"Item\":[", "{\"Item\":{", MPESA_OK, NULL) == -1);
	CHECK(cb_variant("{\"Item\":[", "{\"Items\":[", MPESA_MISSING, IT) ==
	      0);
	CHECK(cb_variant("\"CallbackMetadata\":{", "\"CallbackMetadata\":[{",
	                 MPESA_OK, NULL) == -1); /* not JSON any more */
	CHECK(cb_variant("{\"Body\":{", "{\"Body\":[{", MPESA_OK, NULL) == -1);
	CHECK(cb_variant("{\"Body\":{\"stkCallback\"",
	                 "{\"Body\":{\"stkcallback\"", MPESA_MISSING,
	                 "Body.stkCallback") == 0);
	CHECK(cb_variant("\"MerchantRequestID\":\"29115-34620561-1\"",
	                 "\"MerchantRequestID\":[\"29115-34620561-1\"]",
	                 MPESA_WRONG_TYPE,
	                 "Body.stkCallback.MerchantRequestID") == 0);
	/* Success without Amount or receipt. */
	CHECK(cb_variant("{\"Name\":\"Amount\",\"Value\":1.00},", "",
	                 MPESA_MISSING, IT "[Amount]") == 0);
	CHECK(cb_variant(
		  "{\"Name\":\"MpesaReceiptNumber\",\"Value\":\"NLJ7RT61SV\"},",
		  "", MPESA_MISSING, IT "[MpesaReceiptNumber]") == 0);
	/* Items by name, not position; Balance without Value is fine; a
	 * repeated item is refused. */
	CHECK(cb_variant("{\"Name\":\"Amount\",\"Value\":1.00},", "",
	                 MPESA_MISSING, IT "[Amount]") == 0);
	CHECK(
	    cb_variant(
		"{\"Name\":\"Amount\",\"Value\":1.00},",
		"{\"Name\":\"Balance\"},{\"Name\":\"Amount\",\"Value\":1.00},",
		MPESA_OK, NULL) == 0);
	CHECK(cb_variant("{\"Name\":\"Amount\",\"Value\":1.00},",
	                 "{\"Name\":\"Amount\",\"Value\":1.00},{\"Name\":"
	                 "\"Amount\",\"Value\":2},",
	                 MPESA_BAD_VALUE, IT "[Amount]") == 0);
	CHECK(cb_variant("{\"Name\":\"Amount\",\"Value\":1.00}",
	                 "{\"Value\":1.00}", MPESA_MISSING, IT "[].Name") == 0);
	CHECK(cb_variant("{\"Name\":\"Amount\",\"Value\":1.00}", "7",
	                 MPESA_WRONG_TYPE, IT "[]") == 0);
	/* Duplicate keys and invalid UTF-8 never reach the parser. */
	CHECK(cb_variant("\"ResultCode\":0",
	                 "\"ResultCode\":0,\"ResultCode\":1", MPESA_OK,
	                 NULL) == -1);
	CHECK(cb_variant("NLJ7RT61SV", "NLJ7\xff", MPESA_OK, NULL) == -1);
	/* A too-long id is refused, not truncated. */
	{
		char big[101], to[160];

		memset(big, 'a', 100);
		big[100] = '\0';
		snprintf(to, sizeof to, "\"MerchantRequestID\":\"%s\"", big);
		CHECK(cb_variant("\"MerchantRequestID\":\"29115-34620561-1\"",
		                 to, MPESA_BAD_VALUE,
		                 "Body.stkCallback.MerchantRequestID") == 0);
	}
	/* U+0000 in a string cannot become a C string. */
	CHECK(cb_variant("NLJ7RT61SV", "NLJ7\\u0000", MPESA_BAD_VALUE,
	                 IT "[MpesaReceiptNumber].Value") == 0);
}

static void
test_callback_ack(void)
{
	char out[128];
	size_t n;
	const char *why;

	CHECK(mpesa_callback_ack_build(out, sizeof out, "Accepted", &n, &why) ==
	      CODEC_OK);
	CHECK_EQ_STR(out, "{\"ResultCode\":0,\"ResultDesc\":\"Accepted\"}");
	CHECK(mpesa_callback_ack_build(out, sizeof out, "Success", &n, &why) ==
	      CODEC_OK);
	CHECK_EQ_STR(out, "{\"ResultCode\":0,\"ResultDesc\":\"Success\"}");
	CHECK(mpesa_callback_ack_build(out, sizeof out, "", &n, &why) ==
	      CODEC_BAD);
}

/* ---- STK query ---------------------------------------------------------- */

static void
test_stk_query(void)
{
	struct mpesa_stk_query_req q = {"174379", PASSKEY, "20160216165627",
	                                "ws_CO_260520211133524545"};
	struct mpesa_stk_query_resp r;
	struct mpesa_err e;
	char out[512], pw[256];
	size_t n;
	const char *why;

	CHECK(mpesa_stk_query_build(out, sizeof out, &q, &n, &why) == CODEC_OK);
	CHECK(mpesa_stk_password(pw, sizeof pw, "174379", PASSKEY,
	                         "20160216165627", &n, &why) == CODEC_OK);
	{
		char want[1024];

		snprintf(
		    want, sizeof want,
		    "{\"BusinessShortCode\":\"174379\",\"Password\":\"%s\","
		    "\"Timestamp\":\"20160216165627\","
		    "\"CheckoutRequestID\":\"ws_CO_260520211133524545\"}",
		    pw);
		CHECK_EQ_STR(out, want);
	}
	q.short_code = NULL;
	CHECK(mpesa_stk_query_build(out, sizeof out, &q, &n, &why) ==
	      CODEC_BAD);

	CHECK(load(stk_query_resp) == 0);
	CHECK(mpesa_stk_query_resp_parse(&r, &doc, &e) == MPESA_OK);
	CHECK(mpesa_code_is_zero(&r.response_code));
	CHECK(mpesa_code_is_zero(&r.result_code));
	CHECK_EQ_STR(r.result_code.text, "0");
	CHECK_EQ_STR(r.merchant_request_id, "22205-34066-1");
	CHECK_EQ_STR(r.checkout_request_id, "ws_CO_13012021093521236557");
	CHECK_EQ_STR(r.result_desc,
	             "The service request is processed successfully.");
	/* A non-zero string code. */
	CHECK(load("{\"ResponseCode\":\"0\",\"ResponseDescription\":\"x\","
	           "\"MerchantRequestID\":\"m\",\"CheckoutRequestID\":\"c\","
	           "\"ResultCode\":\"1032\",\"ResultDesc\":\"cancelled\"}") ==
	      0);
	CHECK(mpesa_stk_query_resp_parse(&r, &doc, &e) == MPESA_OK);
	CHECK(r.result_code.is_num && r.result_code.num == 1032);
	CHECK(load("{\"ResponseCode\":\"0\",\"ResponseDescription\":\"x\","
	           "\"MerchantRequestID\":\"m\",\"CheckoutRequestID\":\"c\","
	           "\"ResultCode\":true,\"ResultDesc\":\"?\"}") == 0);
	CHECK(mpesa_stk_query_resp_parse(&r, &doc, &e) == MPESA_WRONG_TYPE);
	CHECK_EQ_STR(e.field, "ResultCode");
}

/* ---- C2B ----------------------------------------------------------------- */

static void
test_c2b(void)
{
	struct mpesa_c2b c;
	struct mpesa_err e;
	char out[512], want[512];
	size_t n;
	const char *why;

	compact(want, c2b_register);
	CHECK(mpesa_c2b_register_build(
		  out, sizeof out, "600984", MPESA_C2B_DEFAULT_COMPLETED,
		  "https://x/confirm", "https://x/validate", &n,
		  &why) == CODEC_OK);
	CHECK_EQ_STR(out, want);

	CHECK(load(c2b_cb) == 0);
	CHECK(mpesa_c2b_parse(&c, &doc, &e) == MPESA_OK);
	CHECK_EQ_STR(c.transaction_type, "Pay Bill");
	CHECK_EQ_STR(c.trans_id, "RKL51ZDR4F");
	CHECK_EQ_STR(c.trans_time, "20231121121325");
	CHECK_EQ_INT(c.amount_minor, 500);
	CHECK_EQ_STR(c.short_code, "600966");
	CHECK_EQ_STR(c.bill_ref, "Sample Transaction");
	CHECK(c.has_balance);
	CHECK_EQ_INT(c.balance_minor, 2500);
	CHECK_EQ_STR(c.msisdn, "2547 ***** 126");
	CHECK_EQ_STR(c.first_name, "JOHN");
	CHECK_EQ_STR(c.last_name, "");

	/* Validation: OrgAccountBalance blank; the v1 form. */
	CHECK(
	    load("{\"TransactionType\":\"\",\"TransID\":\"RKL51ZDR4F\","
	         "\"TransTime\":\"20231121121325\",\"TransAmount\":\"10.00\","
	         "\"BusinessShortCode\":\"600966\",\"BillRefNumber\":\"acc1\","
	         "\"OrgAccountBalance\":\"\",\"MSISDN\":\"254708374149\"}") ==
	    0);
	CHECK(mpesa_c2b_parse(&c, &doc, &e) == MPESA_OK);
	CHECK(!c.has_balance);
	CHECK_EQ_INT(c.amount_minor, 1000);
	/* Amount as a number (documented as a string). */
	CHECK(load("{\"TransactionType\":\"\",\"TransID\":\"R\","
	           "\"TransTime\":\"20231121121325\",\"TransAmount\":10.00,"
	           "\"BusinessShortCode\":\"600966\",\"BillRefNumber\":\"a\","
	           "\"MSISDN\":\"254708374149\"}") == 0);
	CHECK(mpesa_c2b_parse(&c, &doc, &e) == MPESA_WRONG_TYPE);
	CHECK_EQ_STR(e.field, "TransAmount");
	CHECK(load("{\"TransactionType\":\"\",\"TransID\":\"R\","
	           "\"TransTime\":\"20231121121325\",\"TransAmount\":\"1,000\","
	           "\"BusinessShortCode\":\"600966\",\"BillRefNumber\":\"a\","
	           "\"MSISDN\":\"254708374149\"}") == 0);
	CHECK(mpesa_c2b_parse(&c, &doc, &e) == MPESA_BAD_VALUE);
	CHECK(load("{\"TransactionType\":\"\",\"TransID\":\"R\","
	           "\"TransTime\":\"2023-11-21\",\"TransAmount\":\"1\","
	           "\"BusinessShortCode\":\"600966\",\"BillRefNumber\":\"a\","
	           "\"MSISDN\":\"254708374149\"}") == 0);
	CHECK(mpesa_c2b_parse(&c, &doc, &e) == MPESA_BAD_VALUE);
	CHECK_EQ_STR(e.field, "TransTime");
	CHECK(load("{\"TransactionType\":\"\",\"TransID\":\"R\","
	           "\"TransTime\":\"20231121121325\",\"TransAmount\":\"1\","
	           "\"BusinessShortCode\":\"600966\",\"MSISDN\":\"2547\"}") ==
	      0);
	CHECK(mpesa_c2b_parse(&c, &doc, &e) == MPESA_MISSING);
	CHECK_EQ_STR(e.field, "BillRefNumber");
}

static void
test_c2b_validation_resp(void)
{
	static const char *const want[] = {
	    "{\"ResultCode\":\"0\",\"ResultDesc\":\"Accepted\"}",
	    "{\"ResultCode\":\"C2B00011\",\"ResultDesc\":\"Rejected\"}",
	    "{\"ResultCode\":\"C2B00012\",\"ResultDesc\":\"Rejected\"}",
	    "{\"ResultCode\":\"C2B00013\",\"ResultDesc\":\"Rejected\"}",
	    "{\"ResultCode\":\"C2B00014\",\"ResultDesc\":\"Rejected\"}",
	    "{\"ResultCode\":\"C2B00015\",\"ResultDesc\":\"Rejected\"}",
	    "{\"ResultCode\":\"C2B00016\",\"ResultDesc\":\"Rejected\"}",
	};
	char out[256];
	size_t n, i;
	const char *why;

	for (i = 0; i < 7; i++) {
		CHECK(mpesa_c2b_validation_resp_build(
			  out, sizeof out, (enum mpesa_c2b_verdict)i, NULL, &n,
			  &why) == CODEC_OK);
		CHECK_EQ_STR(out, want[i]);
	}
	CHECK(mpesa_c2b_validation_resp_build(out, sizeof out, MPESA_C2B_ACCEPT,
	                                      "soko-42", &n, &why) == CODEC_OK);
	CHECK_EQ_STR(out, "{\"ResultCode\":\"0\",\"ResultDesc\":\"Accepted\","
	                  "\"ThirdPartyTransID\":\"soko-42\"}");
	CHECK(mpesa_c2b_validation_resp_build(out, sizeof out,
	                                      MPESA_C2B_REJECT_ACCOUNT, "x", &n,
	                                      &why) == CODEC_BAD);
	CHECK(mpesa_c2b_validation_resp_build(out, sizeof out,
	                                      (enum mpesa_c2b_verdict)7, NULL,
	                                      &n, &why) == CODEC_BAD);
}

/* ---- B2C, status, results ---------------------------------------------- */

static struct mpesa_b2c_req
b2c_sample_req(void)
{
	struct mpesa_b2c_req r;

	r.originator_conversation_id = "600997_Test_32et3241ed8yu";
	r.initiator_name = "testapi";
	r.security_credential = "<base64 RSA>";
	r.command = MPESA_B2C_BUSINESS;
	r.amount_minor = 1000;
	r.party_a = "600992";
	r.party_b = "254705912645";
	r.remarks = "remarked";
	r.queue_timeout_url = "https://mydomain.com/path";
	r.result_url = "https://mydomain.com/path";
	r.occasion = "ChristmasPay";
	return r;
}

static void
test_b2c(void)
{
	struct mpesa_b2c_req r = b2c_sample_req();
	struct mpesa_accepted a;
	struct mpesa_b2c_result res;
	struct mpesa_err e;
	char out[1024], want[1024];
	size_t n;
	const char *why;

	compact(want, b2c_req);
	CHECK(mpesa_b2c_build(out, sizeof out, &r, &n, &why) == CODEC_OK);
	CHECK_EQ_STR(out, want);
	r.remarks = "x";
	CHECK(mpesa_b2c_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
	r = b2c_sample_req();
	r.party_b = "0705912645";
	CHECK(mpesa_b2c_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
	r = b2c_sample_req();
	r.amount_minor = 1050;
	CHECK(mpesa_b2c_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
	r = b2c_sample_req();
	r.command = (enum mpesa_b2c_command)3;
	CHECK(mpesa_b2c_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);

	CHECK(load(b2c_resp) == 0);
	CHECK(mpesa_accepted_parse(&a, &doc, &e) == MPESA_OK);
	CHECK_EQ_STR(a.conversation_id, "AG_20240706_20106e9209f64bebd05b");
	CHECK_EQ_STR(a.originator_conversation_id, "600997_Test_32et3241ed8yu");
	CHECK(mpesa_code_is_zero(&a.response_code));

	CHECK(load(b2c_ok) == 0);
	CHECK(mpesa_b2c_result_parse(&res, &doc, &e) == MPESA_OK);
	CHECK(mpesa_code_is_zero(&res.r.result_code));
	CHECK(mpesa_code_is_zero(&res.r.result_type));
	CHECK_EQ_STR(res.r.transaction_id, "SG632NMUAB");
	CHECK_EQ_STR(res.r.conversation_id, "AG_20240706_2010364430d9bbdaf872");
	CHECK(res.has_amount);
	CHECK_EQ_INT(res.amount_minor, 1000);
	CHECK_EQ_STR(res.receipt, "SG632NMUAB");
	CHECK_EQ_STR(res.receiver_name, "254705912645 - JOHN DOE");
	CHECK_EQ_STR(res.completed_at, "06.07.2024 22:48:52");
	CHECK(res.has_utility_funds);
	CHECK_EQ_INT(res.utility_funds_minor, 895926960);
	{
		int64_t m;
		size_t v = mpesa_result_param(
		    &res.r, "B2CChargesPaidAccountAvailableFunds");

		CHECK(v != 0);
		CHECK(json_num_to_minor(json_span(&doc, v), 2, &m, &why) ==
		          CODEC_OK &&
		      m == -198000);
		CHECK_EQ_INT(mpesa_result_param(&res.r, "NoSuchKey"), 0);
	}

	CHECK(load(b2c_fail) == 0);
	CHECK(mpesa_b2c_result_parse(&res, &doc, &e) == MPESA_OK);
	CHECK(res.r.result_code.is_num && res.r.result_code.num == 2001);
	CHECK(!res.has_amount);
	CHECK_EQ_INT(res.r.params, 0);

	/* Success without a receipt; amount as a decimal string (Values mix
	 * types: accepted); ResultParameter not an array. */
	CHECK(load("{\"Result\":{\"ResultType\":0,\"ResultCode\":0,"
	           "\"ResultDesc\":\"ok\",\"OriginatorConversationID\":\"o\","
	           "\"ConversationID\":\"c\",\"ResultParameters\":{"
	           "\"ResultParameter\":[{\"Key\":\"TransactionAmount\","
	           "\"Value\":\"10.00\"}]}}}") == 0);
	CHECK(mpesa_b2c_result_parse(&res, &doc, &e) == MPESA_MISSING);
	CHECK_EQ_STR(
	    e.field,
	    "Result.ResultParameters.ResultParameter[TransactionReceipt]");
	CHECK_EQ_INT(res.amount_minor, 1000);
	CHECK(load("{\"Result\":{\"ResultType\":0,\"ResultCode\":0,"
	           "\"ResultDesc\":\"ok\",\"OriginatorConversationID\":\"o\","
	           "\"ConversationID\":\"c\",\"ResultParameters\":{"
	           "\"ResultParameter\":\"x\"}}}") == 0);
	CHECK(mpesa_b2c_result_parse(&res, &doc, &e) == MPESA_WRONG_TYPE);
	CHECK(load("{\"Result\":{\"ResultType\":0,\"ResultCode\":0,"
	           "\"ResultDesc\":\"ok\",\"OriginatorConversationID\":\"o\","
	           "\"ConversationID\":\"c\",\"ResultParameters\":{"
	           "\"ResultParameter\":[{\"Value\":1}]}}}") == 0);
	CHECK(mpesa_b2c_result_parse(&res, &doc, &e) == MPESA_MISSING);
	CHECK(load("{\"Result\":{\"ResultType\":0,\"ResultCode\":0,"
	           "\"ResultDesc\":\"ok\",\"OriginatorConversationID\":\"o\","
	           "\"ConversationID\":\"c\",\"ResultParameters\":{"
	           "\"ResultParameter\":{\"Key\":\"TransactionAmount\","
	           "\"Value\":true}}}}") == 0);
	CHECK(mpesa_b2c_result_parse(&res, &doc, &e) == MPESA_WRONG_TYPE);
	CHECK(load("{\"Result\":{\"ResultCode\":0}}") == 0);
	CHECK(mpesa_b2c_result_parse(&res, &doc, &e) == MPESA_MISSING);
	CHECK_EQ_STR(e.field, "Result.ResultType");
	CHECK(load("{\"Result\":[]}") == 0);
	CHECK(mpesa_b2c_result_parse(&res, &doc, &e) == MPESA_WRONG_TYPE);
}

static void
test_status(void)
{
	struct mpesa_status_req q;
	struct mpesa_status_result s;
	struct mpesa_result r;
	struct mpesa_err e;
	char out[1024], want[1024];
	size_t n;
	const char *why;

	q.initiator = "testapiuser";
	q.security_credential = "<b64>";
	q.transaction_id = "NEF61H8J60";
	q.original_conversation_id = "7071-4170-a0e5-8345632bad442144258";
	q.party_a = "600782";
	q.identifier_type = "4";
	q.result_url = "http://myservice:8080/transactionstatus/result";
	q.queue_timeout_url = "http://myservice:8080/timeout";
	q.remarks = "OK";
	q.occasion = "OK";
	compact(want, status_req);
	CHECK(mpesa_status_build(out, sizeof out, &q, &n, &why) == CODEC_OK);
	CHECK_EQ_STR(out, want);
	q.identifier_type = "44";
	CHECK(mpesa_status_build(out, sizeof out, &q, &n, &why) == CODEC_BAD);

	CHECK(load(status_result) == 0);
	CHECK(mpesa_status_result_parse(&s, &doc, &e) == MPESA_OK);
	CHECK_EQ_STR(s.receipt, "NEF61H8J60");
	CHECK_EQ_INT(s.amount_minor, 30000);
	CHECK_EQ_STR(s.status, "Completed");
	CHECK_EQ_STR(s.initiated_time, "20191219102115");
	CHECK_EQ_STR(s.credit_party, "254708374149 - JOHN DOE");
	/* Keys match loosely; a parameter without Value reads as absent. */
	CHECK(mpesa_result_param(&s.r, "OriginatorConversationID") != 0);
	CHECK_EQ_INT(mpesa_result_param(&s.r, "TransactionReason"), 0);

	/* Account balance: strings for ResultType/ResultCode. */
	CHECK(load(balance_result) == 0);
	CHECK(mpesa_result_parse(&r, &doc, &e) == MPESA_OK);
	CHECK(mpesa_code_is_zero(&r.result_code));
	CHECK(json_str_eq(&doc, mpesa_result_param(&r, "BOCompletedTime"),
	                  "20200109125710"));
}

static void
test_reversal(void)
{
	struct mpesa_reversal_req q;
	struct mpesa_reversal_result r;
	struct mpesa_err e;
	char out[1024], want[1024];
	size_t n;
	const char *why;

	memset(&q, 0, sizeof q);
	q.initiator = "apiop37";
	q.security_credential = "<b64>";
	q.transaction_id = "PDU91HIVIT";
	q.amount_minor = 20000;
	q.receiver_party = "603021";
	q.receiver_identifier_type = "11";
	q.result_url = "https://mydomain.com/reversal/result";
	q.queue_timeout_url = "https://mydomain.com/reversal/queue";
	q.remarks = "Payment reversal";
	compact(want, reversal_req);
	CHECK(mpesa_reversal_build(out, sizeof out, &q, &n, &why) == CODEC_OK);
	CHECK_EQ_STR(out, want);
	CHECK_EQ_INT(n, strlen(want));
	q.occasion = "refund";
	CHECK(mpesa_reversal_build(out, sizeof out, &q, &n, &why) == CODEC_OK);
	CHECK(strstr(out, ",\"Occasion\":\"refund\"}") != NULL);
	q.amount_minor = 20050; /* M-Pesa moves whole shillings */
	CHECK(mpesa_reversal_build(out, sizeof out, &q, &n, &why) == CODEC_BAD);
	q.amount_minor = 20000;
	q.receiver_identifier_type = "111";
	CHECK(mpesa_reversal_build(out, sizeof out, &q, &n, &why) == CODEC_BAD);
	q.receiver_identifier_type = "11";
	q.transaction_id = "";
	CHECK(mpesa_reversal_build(out, sizeof out, &q, &n, &why) == CODEC_BAD);
	q.transaction_id = "PDU91HIVIT";
	q.remarks = "x";
	CHECK(mpesa_reversal_build(out, sizeof out, &q, &n, &why) == CODEC_BAD);
	q.remarks = "ok";
	CHECK(mpesa_reversal_build(out, 40, &q, &n, &why) != CODEC_OK);

	CHECK(load(reversal_ok) == 0);
	CHECK(mpesa_reversal_result_parse(&r, &doc, &e) == MPESA_OK);
	CHECK(mpesa_code_is_zero(&r.r.result_code));
	CHECK_EQ_STR(r.original_txn, "PDU91HIVIT");
	CHECK_EQ_STR(r.r.transaction_id, "QFE8K2ZJWB");
	CHECK(r.has_amount);
	CHECK_EQ_INT(r.amount_minor, 20000);
	CHECK(load(reversal_failed) == 0);
	CHECK(mpesa_reversal_result_parse(&r, &doc, &e) == MPESA_OK);
	CHECK(!mpesa_code_is_zero(&r.r.result_code));
	CHECK_EQ_STR(r.r.result_code.text, "R000002");
	CHECK(!r.has_amount);
	/* success without the amount: refused, naming the field */
	CHECK(load(reversal_no_amount) == 0);
	CHECK(mpesa_reversal_result_parse(&r, &doc, &e) == MPESA_MISSING);
	CHECK(strstr(e.field, "Amount") != NULL);
}

int
main(void)
{
	RUN(test_token);
	RUN(test_password);
	RUN(test_timestamp);
	RUN(test_samples_truncated);
	RUN(test_stk_push_build);
	RUN(test_stk_push_resp);
	RUN(test_error_resp);
	RUN(test_stk_callback);
	RUN(test_stk_callback_malformed);
	RUN(test_callback_ack);
	RUN(test_stk_query);
	RUN(test_c2b);
	RUN(test_c2b_validation_resp);
	RUN(test_b2c);
	RUN(test_status);
	RUN(test_reversal);
	return check_report("prov_mpesa");
}
