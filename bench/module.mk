# bench/: benchmarks (make bench -> bench/results.tsv; docs/benchmarks.md).
# ledger_bench drives the storage writer (dbq.c) and the ledger core in one
# process, exactly as sokod does; fsync_rate measures the disk's floor.
# provider_bench drives server/net_curl.c against an HTTPS peer (its own
# --serve-trivial mode, or soko-sandbox); bench/provider.sh runs it.
BENCH_BINS := $(BUILD)/bench/ledger_bench $(BUILD)/bench/fsync_rate \
	$(BUILD)/bench/provider_bench
ALL_BINS   += $(BENCH_BINS)
ALL_DEPS   += $(BENCH_BINS:=.d)

$(BUILD)/bench/ledger_bench: bench/ledger_bench.c $(CORE_LIB) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(SERVER_CFLAGS) -MF $@.d $(LDFLAGS_ALL) $< $(CORE_LIB) \
		$(PROTO_LIB) $(PKG_LIBS) -o $@

$(BUILD)/bench/fsync_rate: bench/fsync_rate.c
	@mkdir -p $(@D)
	$(CC) $(SERVER_CFLAGS) -MF $@.d $(LDFLAGS_ALL) $< -o $@

$(BUILD)/bench/provider_bench: bench/provider_bench.c \
		$(BUILD)/server/net_curl.o $(CORE_LIB) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(SERVER_CFLAGS) -MF $@.d $(LDFLAGS_ALL) $< \
		$(BUILD)/server/net_curl.o $(CORE_LIB) $(PROTO_LIB) \
		$(PKG_LIBS) -o $@

bench: $(BENCH_BINS)
	sh bench/run.sh $(BUILD)
