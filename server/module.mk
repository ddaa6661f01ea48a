# server/: sokod, sokoctl and the core library they share with tests.
CORE_SRCS := server/util.c server/log.c server/payment.c server/ledger.c \
	server/store.c server/store_checks.c server/store_sqlite.c \
	server/store_pg.c server/dbq.c server/config.c server/metrics.c \
	server/svc_admin.c server/keywrap.c server/svc_pos.c \
	server/svc_prov.c server/prov_sig.c server/svc_bill.c \
	server/svc_recon.c server/svc_fee.c server/svc_billcat.c
CORE_OBJS := $(CORE_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/gen/migrations.o
CORE_LIB  := $(BUILD)/libsokocore.a

SOKOD_SRCS := server/main.c server/net_http.c server/net_pos.c server/readq.c \
	server/net_prov.c server/net_prov_mpesa.c server/net_prov_momo.c \
	server/net_prov_paystack.c server/net_prov_flw.c server/net_prov_orange.c \
	server/net_curl.c server/net_bill.c server/net_recon.c \
	server/net_fee.c server/net_billcat.c
SOKOD_OBJS := $(SOKOD_SRCS:%.c=$(BUILD)/%.o)
SOKOCTL_OBJS := $(BUILD)/server/sokoctl.o

ALL_BINS += $(BUILD)/sokod $(BUILD)/sokoctl
ALL_DEPS += $(CORE_OBJS:.o=.d) $(SOKOD_OBJS:.o=.d) $(SOKOCTL_OBJS:.o=.d)

$(BUILD)/server/%.o: server/%.c
	@mkdir -p $(@D)
	$(CC) $(SERVER_CFLAGS) -c $< -o $@

$(BUILD)/gen/migrations.c: scripts/embed_sql.sh $(wildcard sql/*/*.sql)
	@mkdir -p $(@D)
	sh scripts/embed_sql.sh $@

$(BUILD)/gen/migrations.o: $(BUILD)/gen/migrations.c
	$(CC) $(SERVER_CFLAGS) -c $< -o $@

$(CORE_LIB): $(CORE_OBJS)
	@rm -f $@
	ar rcs $@ $^

SERVER_LIBS = $(CORE_LIB) $(PROTO_LIB) $(PKG_LIBS)

$(BUILD)/sokod: $(SOKOD_OBJS) $(CORE_LIB) $(PROTO_LIB)
	$(CC) $(LDFLAGS_ALL) $(SOKOD_OBJS) $(SERVER_LIBS) -o $@

$(BUILD)/sokoctl: $(SOKOCTL_OBJS) $(CORE_LIB) $(PROTO_LIB)
	$(CC) $(LDFLAGS_ALL) $(SOKOCTL_OBJS) $(SERVER_LIBS) -o $@

# sokod-canary: sokod with test-only fault switches compiled in
# (-DSOKO_FAULTS; SOKO_FAULT=ack_before_commit acknowledges before the
# commit; SOKO_FAULT=skip_duplicate_check, see svc_pos.c).  Only the crash test runs it, to prove it can fail.  Never
# installed or shipped.
CANARY_OBJS := $(filter-out $(BUILD)/server/net_http.o,$(SOKOD_OBJS)) \
	$(BUILD)/canary/net_http.o
ALL_BINS += $(BUILD)/sokod-canary
ALL_DEPS += $(BUILD)/canary/net_http.d

$(BUILD)/canary/net_http.o: server/net_http.c
	@mkdir -p $(@D)
	$(CC) $(SERVER_CFLAGS) -DSOKO_FAULTS -c $< -o $@

# SOKO_FAULT=skip_duplicate_check (svc_pos.c) needs the POS service
# compiled with -DSOKO_FAULTS too: its own core library, so the
# production objects and libsokocore.a stay exactly as they are.
CANARY_CORE_OBJS := $(filter-out $(BUILD)/server/svc_pos.o,$(CORE_OBJS)) \
	$(BUILD)/canary/svc_pos.o
CANARY_CORE_LIB := $(BUILD)/canary/libsokocore.a
ALL_DEPS += $(BUILD)/canary/svc_pos.d

$(BUILD)/canary/svc_pos.o: server/svc_pos.c
	@mkdir -p $(@D)
	$(CC) $(SERVER_CFLAGS) -DSOKO_FAULTS -c $< -o $@

$(CANARY_CORE_LIB): $(CANARY_CORE_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/sokod-canary: $(CANARY_OBJS) $(CANARY_CORE_LIB) $(PROTO_LIB)
	$(CC) $(LDFLAGS_ALL) $(CANARY_OBJS) $(CANARY_CORE_LIB) $(PROTO_LIB) \
	    $(PKG_LIBS) -o $@
