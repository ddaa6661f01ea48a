/*
 * codec.h - the result shared by every soko codec (STYLE.md §2).
 *
 * Layer: protocols/ (STYLE.md §1).  Callers branch on the value, never on
 * the *why string that comes with CODEC_BAD.
 */
#ifndef SOKO_CODEC_H
#define SOKO_CODEC_H

enum codec_rc {
	CODEC_OK,        /* one item decoded; *used bytes consumed */
	CODEC_NEED_MORE, /* a valid prefix: call again with more bytes (for
	                    writers: the output needs more room) */
	CODEC_BAD,       /* can never become valid; *why is a static string */
};

#endif
