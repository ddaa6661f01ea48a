# terminal/: libsokoterm, the POS terminal client library (STYLE.md §1, §11):
# protocols/ warnings plus -D_DEFAULT_SOURCE; SQLite for the offline queue.
TERM_SRCS   := terminal/sokoterm.c terminal/queue.c terminal/io_posix.c
TERM_OBJS   := $(TERM_SRCS:%.c=$(BUILD)/%.o)
TERM_LIB    := $(BUILD)/libsokoterm.a
TERM_CFLAGS  = $(WARN) -Wconversion -Wsign-conversion -D_DEFAULT_SOURCE \
	$(OPT) $(HARDEN) -MMD -MP -Iprotocols -Iterminal \
	$(shell pkg-config --cflags sqlite3 2>/dev/null)
TERM_LIBS    = $(TERM_LIB) $(PROTO_LIB) \
	$(shell pkg-config --libs sqlite3 2>/dev/null)
ALL_DEPS    += $(TERM_OBJS:.o=.d)

$(BUILD)/terminal/%.o: terminal/%.c
	@mkdir -p $(@D)
	$(CC) $(TERM_CFLAGS) -c $< -o $@

$(TERM_LIB): $(TERM_OBJS)
	@rm -f $@
	ar rcs $@ $^

all: $(TERM_LIB)

# libsokoterm_tls.a: the optional TLS layer of the POSIX helper
# (io_tls.c, OpenSSL).  Its own archive, so that libsokoterm.a and every
# host that does not use TLS link without OpenSSL.  Hosts that do link
# $(TERM_TLS_LIBS) before $(TERM_LIBS).
TERM_TLS_OBJS := $(BUILD)/terminal/io_tls.o
TERM_TLS_LIB  := $(BUILD)/libsokoterm_tls.a
TERM_TLS_LIBS  = $(TERM_TLS_LIB) $(shell pkg-config --libs openssl 2>/dev/null)
ALL_DEPS      += $(TERM_TLS_OBJS:.o=.d)

$(BUILD)/terminal/io_tls.o: terminal/io_tls.c
	@mkdir -p $(@D)
	$(CC) $(TERM_CFLAGS) $(shell pkg-config --cflags openssl 2>/dev/null) \
	    -c $< -o $@

$(TERM_TLS_LIB): $(TERM_TLS_OBJS)
	@rm -f $@
	ar rcs $@ $^

all: $(TERM_TLS_LIB)

# The canary library: libsokoterm with its test-only fault switch
# compiled in (-DSOKOTERM_FAULTS; SOKOTERM_FAULT=send_before_store sends a
# money request before it is stored, see sokoterm.c).  Only the engine is
# rebuilt, into build/canary/, so the production objects and
# libsokoterm.a stay exactly as they are.  Linked into soko-pos-canary
# only (firmware-sim/module.mk); never installed or shipped.
TERM_CANARY_OBJS := $(BUILD)/canary/terminal/sokoterm.o \
	$(BUILD)/terminal/queue.o $(BUILD)/terminal/io_posix.o
TERM_CANARY_LIB  := $(BUILD)/canary/libsokoterm.a
ALL_DEPS         += $(BUILD)/canary/terminal/sokoterm.d

$(BUILD)/canary/terminal/sokoterm.o: terminal/sokoterm.c
	@mkdir -p $(@D)
	$(CC) $(TERM_CFLAGS) -DSOKOTERM_FAULTS -c $< -o $@

$(TERM_CANARY_LIB): $(TERM_CANARY_OBJS)
	@rm -f $@
	ar rcs $@ $^
