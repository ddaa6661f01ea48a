# protocols/: pure codecs, linked by server, terminal, tests and fuzzers.
PROTO_SRCS := protocols/money.c protocols/sha256.c protocols/cbor.c protocols/pos.c protocols/json.c protocols/base64.c protocols/prov_mpesa.c \
	protocols/prov.c protocols/prov_momo.c protocols/prov_orange.c \
	protocols/prov_flw.c protocols/prov_paystack.c
PROTO_OBJS := $(PROTO_SRCS:%.c=$(BUILD)/%.o)
PROTO_LIB  := $(BUILD)/libprotocols.a
ALL_DEPS   += $(PROTO_OBJS:.o=.d)

$(BUILD)/protocols/%.o: protocols/%.c
	@mkdir -p $(@D)
	$(CC) $(PROTO_CFLAGS) -c $< -o $@

$(PROTO_LIB): $(PROTO_OBJS)
	@rm -f $@
	ar rcs $@ $^
