# server/: sokod, sokoctl and the core library they share with tests.
CORE_SRCS := server/util.c server/log.c server/payment.c server/ledger.c \
	server/store.c server/store_checks.c server/store_sqlite.c \
	server/store_pg.c server/dbq.c server/config.c server/metrics.c \
	server/svc_admin.c server/keywrap.c server/svc_pos.c
CORE_OBJS := $(CORE_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/gen/migrations.o
CORE_LIB  := $(BUILD)/libsokocore.a

SOKOD_SRCS := server/main.c server/net_http.c server/net_pos.c
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
# commit).  Only the crash test runs it, to prove it can fail.  Never
# installed or shipped.
CANARY_OBJS := $(filter-out $(BUILD)/server/net_http.o,$(SOKOD_OBJS)) \
	$(BUILD)/canary/net_http.o
ALL_BINS += $(BUILD)/sokod-canary
ALL_DEPS += $(BUILD)/canary/net_http.d

$(BUILD)/canary/net_http.o: server/net_http.c
	@mkdir -p $(@D)
	$(CC) $(SERVER_CFLAGS) -DSOKO_FAULTS -c $< -o $@

$(BUILD)/sokod-canary: $(CANARY_OBJS) $(CORE_LIB) $(PROTO_LIB)
	$(CC) $(LDFLAGS_ALL) $(CANARY_OBJS) $(SERVER_LIBS) -o $@
