/*
 * payment.c - payment state machine table (see payment.h).
 */
#include "payment.h"

#include <string.h>

const uint8_t payment_edges[][2] = {
	{PAY_CREATED, PAY_PENDING},     {PAY_CREATED, PAY_FAILED},
	{PAY_PENDING, PAY_SUCCEEDED},   {PAY_PENDING, PAY_FAILED},
	{PAY_PENDING, PAY_UNKNOWN},     {PAY_UNKNOWN, PAY_SUCCEEDED},
	{PAY_UNKNOWN, PAY_FAILED},      {PAY_SUCCEEDED, PAY_REVERSED},
};
const unsigned payment_n_edges = sizeof payment_edges / sizeof payment_edges[0];

bool
payment_can_transition(uint8_t from, uint8_t to)
{
	unsigned i;

	for (i = 0; i < payment_n_edges; i++)
		if (payment_edges[i][0] == from && payment_edges[i][1] == to)
			return true;
	return false;
}

bool
payment_is_final(uint8_t s)
{
	unsigned i;

	if (payment_state_name(s)[0] == '?')
		return false;
	for (i = 0; i < payment_n_edges; i++)
		if (payment_edges[i][0] == s)
			return false;
	return true;
}

const char *
payment_state_name(uint8_t s)
{
	switch (s) {
#define X(name, val, str)                                                    \
	case val:                                                            \
		return str;
		PAYMENT_STATES(X)
#undef X
	}
	return "?";
}

int
payment_state_parse(const char *s)
{
#define X(name, val, str)                                                    \
	if (strcmp(s, str) == 0)                                             \
		return val;
	PAYMENT_STATES(X)
#undef X
	return -1;
}
