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
