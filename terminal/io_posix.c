/*
 * io_posix.c - optional blocking POSIX helpers for libsokoterm: the
 * default random source (getrandom), a clock, TCP connect with a timeout
 * and a one-round read/write loop (used by soko-pos).
 *
 * Layer: terminal/ (STYLE.md §1).  The only file of the library that makes
 * system calls; the engine (sokoterm.c) never does.  Firmware that has its
 * own transport, clock and RNG does not link this file's functions.
 */
#include "sokoterm.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int
sokoterm_posix_random(void *ctx, uint8_t *buf, size_t len)
{
	ssize_t n;

	(void)ctx;
	while (len > 0) {
		n = getrandom(buf, len, 0);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

uint64_t
sokoterm_posix_now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) == -1)
		return 0;
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Non-blocking connect to one address, waiting up to timeout_ms. */
static int
connect_one(const struct addrinfo *ai, uint32_t timeout_ms)
{
	struct pollfd pfd;
	socklen_t len = sizeof(int);
	int fd, flags, soerr = 0;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
	            ai->ai_protocol);
	if (fd == -1)
		return -1;
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
		goto fail;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == -1) {
		if (errno != EINPROGRESS)
			goto fail;
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, (int)(timeout_ms & 0x7fffffff)) != 1)
			goto fail;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1 ||
		    soerr != 0)
			goto fail;
	}
	if (fcntl(fd, F_SETFL, flags) == -1) /* blocking again */
		goto fail;
	if (ai->ai_protocol == IPPROTO_TCP || ai->ai_socktype == SOCK_STREAM) {
		/* small request frames: no Nagle delay behind delayed ACKs */
		int one = 1;

		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		                 (socklen_t)sizeof one);
	}
	return fd;
fail:
	close(fd);
	return -1;
}

enum sokoterm_err
sokoterm_posix_connect(const char *host, const char *port, uint32_t timeout_ms,
                       int *fd)
{
	struct addrinfo hints, *res = NULL, *ai;
	int s = -1;

	*fd = -1;
	if (host == NULL || port == NULL)
		return SOKOTERM_ERR_ARG;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return SOKOTERM_ERR_IO;
	for (ai = res; ai != NULL && s == -1; ai = ai->ai_next)
		s = connect_one(ai, timeout_ms);
	freeaddrinfo(res);
	if (s == -1)
		return SOKOTERM_ERR_IO;
	*fd = s;
	return SOKOTERM_OK;
}

enum sokoterm_err
sokoterm_posix_pump(struct sokoterm *t, int fd, uint32_t wait_ms)
{
	uint8_t buf[4096];
	const uint8_t *p;
	struct pollfd pfd;
	size_t len;
	ssize_t n;
	int rc;

	sokoterm_outbox(t, &p, &len);
	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return SOKOTERM_ERR_IO;
		}
		sokoterm_sent(t, (size_t)n);
		sokoterm_outbox(t, &p, &len);
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	rc = poll(&pfd, 1, (int)(wait_ms & 0x7fffffff));
	if (rc == -1 && errno != EINTR)
		return SOKOTERM_ERR_IO;
	if (rc == 1) {
		n = recv(fd, buf, sizeof buf, 0);
		if (n == 0 || (n == -1 && errno != EINTR && errno != EAGAIN))
			return SOKOTERM_ERR_IO;
		if (n > 0) {
			enum sokoterm_err e = sokoterm_feed(t, buf, (size_t)n);

			if (e != SOKOTERM_OK)
				return e;
		}
	}
	return sokoterm_tick(t, sokoterm_posix_now_ms());
}
