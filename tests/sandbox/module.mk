# tests/sandbox/: soko-sandbox, the five payment providers on loopback
# over HTTPS (tests/sandbox/README.md).  An independent implementation:
# it links no soko library (no protocols/ codec, no server/ code), only
# libevent (+ its OpenSSL glue), OpenSSL and jansson.
SANDBOX_PKGS   := libevent libevent_openssl openssl jansson
SANDBOX_SRCS   := $(wildcard tests/sandbox/*.c)
SANDBOX_OBJS   := $(SANDBOX_SRCS:%.c=$(BUILD)/%.o)
SANDBOX_CFLAGS  = $(WARN) -D_DEFAULT_SOURCE $(OPT) $(HARDEN) -MMD -MP \
	$(shell pkg-config --cflags $(SANDBOX_PKGS) 2>/dev/null)
SANDBOX_LIBS    = $(shell pkg-config --libs $(SANDBOX_PKGS) 2>/dev/null)
ALL_BINS       += $(BUILD)/soko-sandbox
ALL_DEPS       += $(SANDBOX_OBJS:.o=.d)

$(BUILD)/tests/sandbox/%.o: tests/sandbox/%.c
	@mkdir -p $(@D)
	$(CC) $(SANDBOX_CFLAGS) -c $< -o $@

$(BUILD)/soko-sandbox: $(SANDBOX_OBJS)
	$(CC) $(LDFLAGS_ALL) $(SANDBOX_OBJS) $(SANDBOX_LIBS) -o $@

# The sandbox's own suite: every provider flow, faults, ledger, errors.
check-sandbox: $(BUILD)/soko-sandbox
	@$(PYTHON) tests/sandbox/test_sandbox.py --build $(BUILD)
