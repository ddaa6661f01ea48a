# bench/: benchmarks (make bench -> bench/results.tsv; docs/benchmarks.md).
# ledger_bench drives the storage writer (dbq.c) and the ledger core in one
# process, exactly as sokod does; fsync_rate measures the disk's floor.
# provider_bench drives server/net_curl.c against an HTTPS peer (its own
# --serve-trivial mode, or soko-sandbox); bench/provider.sh runs it.
BENCH_BINS := $(BUILD)/bench/ledger_bench $(BUILD)/bench/fsync_rate \
	$(BUILD)/bench/pos_setup $(BUILD)/bench/term_rss \
	$(BUILD)/bench/provider_bench
ALL_BINS   += $(BENCH_BINS)
ALL_DEPS   += $(BENCH_BINS:=.d)

$(BUILD)/bench/ledger_bench: bench/ledger_bench.c $(CORE_LIB) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(SERVER_CFLAGS) -MF $@.d $(LDFLAGS_ALL) $< $(CORE_LIB) \
		$(PROTO_LIB) $(PKG_LIBS) -o $@

# pos_setup provisions the POS fleet of bench/pos.sh (setup, not measured)
$(BUILD)/bench/pos_setup: bench/pos_setup.c $(CORE_LIB) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(SERVER_CFLAGS) -MF $@.d $(LDFLAGS_ALL) $< $(CORE_LIB) \
		$(PROTO_LIB) $(PKG_LIBS) -o $@

# term_rss: a minimal libsokoterm host (term.rss_kb), linked as firmware
# would link it: libsokoterm, libprotocols, SQLite
$(BUILD)/bench/term_rss: bench/term_rss.c $(TERM_LIB) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(WARN) -D_DEFAULT_SOURCE $(OPT) $(HARDEN) -MMD -MP -Iterminal \
		-MF $@.d $(LDFLAGS_ALL) $< $(TERM_LIBS) -o $@

$(BUILD)/bench/fsync_rate: bench/fsync_rate.c
	@mkdir -p $(@D)
	$(CC) $(SERVER_CFLAGS) -MF $@.d $(LDFLAGS_ALL) $< -o $@

$(BUILD)/bench/provider_bench: bench/provider_bench.c \
		$(BUILD)/server/net_curl.o $(CORE_LIB) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(SERVER_CFLAGS) -MF $@.d $(LDFLAGS_ALL) $< \
		$(BUILD)/server/net_curl.o $(CORE_LIB) $(PROTO_LIB) \
		$(PKG_LIBS) -o $@

# deps.sh bench installs redis (pos.status's baseline) when run as root;
# without it bench/pos.sh writes no pos.status row rather than invent one
bench: $(BENCH_BINS) $(BUILD)/sokod $(BUILD)/soko-pos $(BUILD)/soko-sandbox
	-@sh scripts/deps.sh bench
	sh bench/run.sh $(BUILD)

# pos_wire: the POS listener's load without the simulated terminals' own
# queues (bench/pos.sh *.wire rows; not a terminal: it stores nothing)
BENCH_BINS += $(BUILD)/bench/pos_wire
ALL_BINS   += $(BUILD)/bench/pos_wire
ALL_DEPS   += $(BUILD)/bench/pos_wire.d

$(BUILD)/bench/pos_wire: bench/pos_wire.c $(BUILD)/firmware-sim/sim_prov.o \
		$(BUILD)/firmware-sim/sim_http.o $(TERM_LIB) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(WARN) -D_DEFAULT_SOURCE $(OPT) $(HARDEN) -MMD -MP \
		-Iterminal -Iprotocols -Ifirmware-sim -MF $@.d $(LDFLAGS_ALL) \
		$< $(BUILD)/firmware-sim/sim_prov.o \
		$(BUILD)/firmware-sim/sim_http.o $(TERM_LIBS) -lm -pthread -o $@
