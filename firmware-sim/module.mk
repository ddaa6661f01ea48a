# firmware-sim/: soko-pos, the POS terminal firmware simulator (STYLE.md
# §1, §11).  Links libsokoterm exactly as firmware would (libsokoterm.a,
# libprotocols.a, SQLite; libsokoterm_tls.a and OpenSSL for --tls-ca); no
# libevent: fleet mode uses epoll directly.
SIM_SRCS   := firmware-sim/soko-pos.c firmware-sim/sim_prov.c \
	firmware-sim/sim_http.c firmware-sim/sim_term.c \
	firmware-sim/sim_fleet.c
SIM_OBJS   := $(SIM_SRCS:%.c=$(BUILD)/%.o)
SIM_CFLAGS  = $(WARN) -D_DEFAULT_SOURCE $(OPT) $(HARDEN) -MMD -MP \
	-Iterminal $(shell pkg-config --cflags sqlite3 2>/dev/null)
ALL_BINS   += $(BUILD)/soko-pos
ALL_DEPS   += $(SIM_OBJS:.o=.d)

$(BUILD)/firmware-sim/%.o: firmware-sim/%.c
	@mkdir -p $(@D)
	$(CC) $(SIM_CFLAGS) -c $< -o $@

$(BUILD)/soko-pos: $(SIM_OBJS) $(TERM_TLS_LIB) $(TERM_LIB) $(PROTO_LIB)
	$(CC) $(LDFLAGS_ALL) $(SIM_OBJS) $(TERM_TLS_LIBS) $(TERM_LIBS) -lm -o $@

# soko-pos-canary: the same simulator linked with the canary libsokoterm
# (terminal/module.mk: SOKOTERM_FAULT=send_before_store).  Only
# tests/integration/test_pos_kill.py runs it, to prove that killing
# terminals can expose a terminal that sends before it stores.
ALL_BINS += $(BUILD)/soko-pos-canary

$(BUILD)/soko-pos-canary: $(SIM_OBJS) $(TERM_TLS_LIB) $(TERM_CANARY_LIB) \
	$(PROTO_LIB)
	$(CC) $(LDFLAGS_ALL) $(SIM_OBJS) $(TERM_TLS_LIBS) $(TERM_CANARY_LIB) \
	    $(PROTO_LIB) \
	    $(shell pkg-config --libs sqlite3 2>/dev/null) -lm -o $@
