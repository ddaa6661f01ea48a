# tests/fuzz/: libFuzzer targets.  `make check` replays every corpus with
# the ordinary build (gcc; ASan+UBSan in build/asan); `make fuzz` runs the
# real fuzzers (clang -fsanitize=fuzzer) for FUZZ_SECONDS each and merges
# new coverage into tests/fuzz/corpus/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := money movement pos cbor json mpesa callbacks rpc
REPLAY_BINS  := $(FUZZ_TARGETS:%=$(BUILD)/tests/fuzz/replay_%)
ALL_BINS     += $(REPLAY_BINS)

# fuzz_money links protocols/ only: the link proves the codec is pure.
$(BUILD)/tests/fuzz/replay_money: tests/fuzz/replay.c tests/fuzz/fuzz_money.c $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(UNIT_CFLAGS) $(LDFLAGS_ALL) $^ -o $@

$(BUILD)/tests/fuzz/replay_movement: tests/fuzz/replay.c tests/fuzz/fuzz_movement.c $(CORE_LIB) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(UNIT_CFLAGS) $(LDFLAGS_ALL) tests/fuzz/replay.c \
		tests/fuzz/fuzz_movement.c $(TEST_LIBS) -o $@

# fuzz_pos and fuzz_cbor link protocols/ only, like fuzz_money.
$(BUILD)/tests/fuzz/replay_pos: tests/fuzz/replay.c tests/fuzz/fuzz_pos.c $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(UNIT_CFLAGS) $(LDFLAGS_ALL) $^ -o $@

$(BUILD)/tests/fuzz/replay_cbor: tests/fuzz/replay.c tests/fuzz/fuzz_cbor.c $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(UNIT_CFLAGS) $(LDFLAGS_ALL) $^ -o $@

# fuzz_rpc: the /rpc.batch envelope; protocols/ only, like fuzz_pos.
$(BUILD)/tests/fuzz/replay_rpc: tests/fuzz/replay.c tests/fuzz/fuzz_rpc.c $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(UNIT_CFLAGS) $(LDFLAGS_ALL) $^ -o $@

# fuzz_json and fuzz_mpesa link protocols/ only, like fuzz_money.
$(BUILD)/tests/fuzz/replay_json: tests/fuzz/replay.c tests/fuzz/fuzz_json.c $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(UNIT_CFLAGS) $(LDFLAGS_ALL) $^ -o $@

$(BUILD)/tests/fuzz/replay_mpesa: tests/fuzz/replay.c tests/fuzz/fuzz_mpesa.c $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(UNIT_CFLAGS) $(LDFLAGS_ALL) $^ -o $@

# fuzz_callbacks: every provider's response and callback parsers; links
# protocols/ only.
$(BUILD)/tests/fuzz/replay_callbacks: tests/fuzz/replay.c tests/fuzz/fuzz_callbacks.c $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(UNIT_CFLAGS) $(LDFLAGS_ALL) $^ -o $@

check-fuzz: $(REPLAY_BINS)
	@for t in $(FUZZ_TARGETS); do \
		$(BUILD)/tests/fuzz/replay_$$t tests/fuzz/corpus/$$t || exit 1; \
	done

FUZZ_CC := clang -g -O1 -fsanitize=fuzzer,address,undefined \
	-D_DEFAULT_SOURCE -Iprotocols -Iserver -I$(BUILD)/gen
build/fuzz/fuzz_money: tests/fuzz/fuzz_money.c protocols/money.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $^ -o $@
build/fuzz/fuzz_movement: tests/fuzz/fuzz_movement.c server/svc_admin.c \
		server/ledger.c server/util.c protocols/money.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $^ $(shell pkg-config --libs jansson libcrypto) -o $@

build/fuzz/fuzz_pos: tests/fuzz/fuzz_pos.c protocols/pos.c protocols/cbor.c \
		protocols/sha256.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $^ -o $@
build/fuzz/fuzz_cbor: tests/fuzz/fuzz_cbor.c protocols/cbor.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $^ -o $@
build/fuzz/fuzz_rpc: tests/fuzz/fuzz_rpc.c protocols/pos.c protocols/cbor.c \
		protocols/sha256.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $^ -o $@

build/fuzz/fuzz_json: tests/fuzz/fuzz_json.c protocols/json.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $^ -o $@
build/fuzz/fuzz_mpesa: tests/fuzz/fuzz_mpesa.c protocols/prov_mpesa.c \
		protocols/json.c protocols/base64.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $^ -o $@

build/fuzz/fuzz_callbacks: tests/fuzz/fuzz_callbacks.c protocols/prov_mpesa.c \
		protocols/prov.c protocols/prov_momo.c protocols/prov_orange.c \
		protocols/prov_flw.c protocols/prov_paystack.c \
		protocols/json.c protocols/base64.c protocols/money.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $^ -o $@

fuzz: $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p build/fuzz/new_$$t; \
		build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
			-max_len=4096 build/fuzz/new_$$t tests/fuzz/corpus/$$t \
			|| exit 1; \
		build/fuzz/fuzz_$$t -merge=1 tests/fuzz/corpus/$$t \
			build/fuzz/new_$$t || exit 1; \
	done
