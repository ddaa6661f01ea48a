# tests/: unit tests (one binary per module), the storage conformance suite
# (SQLite and a throwaway PostgreSQL), and the integration suites.
UNIT_CFLAGS = $(SERVER_CFLAGS) -Itests/unit
TEST_LIBS   = $(CORE_LIB) $(PROTO_LIB) $(PKG_LIBS)

UNIT_SRCS  := $(filter-out tests/unit/store/% tests/unit/terminal/%,\
	$(wildcard tests/unit/*/test_*.c))
UNIT_BINS  := $(UNIT_SRCS:%.c=$(BUILD)/%)
STORE_BIN  := $(BUILD)/tests/unit/store/test_store
ALL_BINS   += $(UNIT_BINS) $(STORE_BIN)
ALL_DEPS   += $(UNIT_BINS:=.d) $(STORE_BIN).d

$(BUILD)/tests/unit/%: tests/unit/%.c $(CORE_LIB) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(UNIT_CFLAGS) -MF $@.d $(LDFLAGS_ALL) $< $(TEST_LIBS) -o $@

# libsokoterm's tests link the terminal library (and SQLite), not the
# server core: they prove the library stands alone.
TERM_TEST_SRCS   := $(wildcard tests/unit/terminal/test_*.c)
TERM_TEST_BINS   := $(TERM_TEST_SRCS:%.c=$(BUILD)/%)
TERM_TEST_CFLAGS  = $(WARN) -D_DEFAULT_SOURCE $(OPT) $(HARDEN) -MMD -MP \
	-Iprotocols -Iterminal -Itests/unit \
	$(shell pkg-config --cflags sqlite3 2>/dev/null)
ALL_BINS         += $(TERM_TEST_BINS)
ALL_DEPS         += $(TERM_TEST_BINS:=.d)

$(BUILD)/tests/unit/terminal/%: tests/unit/terminal/%.c $(TERM_LIB) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(TERM_TEST_CFLAGS) -MF $@.d $(LDFLAGS_ALL) $< $(TERM_LIBS) -o $@

check-unit: $(UNIT_BINS) $(TERM_TEST_BINS)
	@sh tests/run_unit.sh $(UNIT_BINS) $(TERM_TEST_BINS)

# The same suite against SQLite, then against a throwaway PostgreSQL that
# tests/pg.sh starts and stops (never skipped).
check-store: $(STORE_BIN)
	@$(STORE_BIN) sqlite
	@sh tests/pg.sh $(STORE_BIN) pg

# Everything on SQLite; then sokod on PostgreSQL for the API, the limits
# race and the kill -9 crash test.
check-integration: all
	@$(PYTHON) tests/integration/run.py --build $(BUILD)
	@sh tests/pg.sh $(PYTHON) tests/integration/run.py --build $(BUILD) \
		--store pg --only t_pos_rpc,movement,bad_input,limits_race,crash_kill9,pos_transfer_duplicate,pos_tls_login,t_mpesa_collection_success,t_mpesa_faults,t_momo_faults,t_mpesa_forged,t_reversal_ok,t_reversal_failed,t_paystack_otp,t_recon,t_fees,t_pos_collect_flow,t_pos_collect_limits,t_pos_collect_redelivery,t_pos_collect_kill_duplicate,t_pos_bill_advice,t_pos_sim_eod,t_pos_fleet_mix,t_pos_collect_merchant,t_pos_rekey,t_pos_agent_block,t_pos_wire

# docs/configuration.md's keys table is made from config.def (through
# sokod --help-config): fail when someone edits one and not the other.
check-docs: $(BUILD)/sokod
	@$(PYTHON) scripts/config_doc.py $(BUILD)/sokod docs/configuration.md --check
	@echo "docs: 1 passed, 0 failed"
