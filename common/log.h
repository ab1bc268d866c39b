/* SPDX-License-Identifier: Apache-2.0 */
/* log.h: the one log facility of tierfs (syslog levels, stderr or syslog, capturable). */
#ifndef TIERFS_COMMON_LOG_H
#define TIERFS_COMMON_LOG_H

#include <stdarg.h>
#include <stdint.h>
#include <syslog.h>

/* Levels are syslog's, so the daemon can pass them straight through. */
#define TLOG_ERR LOG_ERR
#define TLOG_WARNING LOG_WARNING
#define TLOG_NOTICE LOG_NOTICE
#define TLOG_INFO LOG_INFO
#define TLOG_DEBUG LOG_DEBUG

/* A sink receives every message that passes the level test, already formatted. */
typedef void (*tlog_sink_fn)(int level, const char *msg, void *arg);

extern int tlog_level_cur; /* read without a lock: a stale level is harmless */

/* Set / get the current level (TLOG_*). Thread safe (relaxed). */
void tlog_set_level(int level);
int tlog_get_level(void);
/* Parse "err|warning|notice|info|debug" (or a digit 0-7). @return level or -EINVAL. */
int tlog_parse_level(const char *name);
/* Send messages to syslog under @ident (daemon mode) instead of stderr. */
void tlog_use_syslog(const char *ident);
/* Replace the sink (tests capture messages); NULL restores stderr/syslog. */
void tlog_set_sink(tlog_sink_fn fn, void *arg);

void tlog_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tlog_vmsg(int level, const char *fmt, va_list ap);

/* Test the level before formatting so disabled debug lines cost one compare. */
#define TLOG(level, ...)                                                                           \
    do {                                                                                           \
        if ((level) <= tlog_level_cur)                                                             \
            tlog_msg((level), __VA_ARGS__);                                                        \
    } while (0)
#define TLOG_E(...) TLOG(TLOG_ERR, __VA_ARGS__)
#define TLOG_W(...) TLOG(TLOG_WARNING, __VA_ARGS__)
#define TLOG_N(...) TLOG(TLOG_NOTICE, __VA_ARGS__)
#define TLOG_I(...) TLOG(TLOG_INFO, __VA_ARGS__)
#define TLOG_D(...) TLOG(TLOG_DEBUG, __VA_ARGS__)

/*
 * Rate limiter for repeated errors: at most @burst messages per @interval_ms;
 * the first message after a suppressed stretch says how many were dropped.
 * Zero-initialise, then set interval_ms and burst. Thread safe.
 */
struct tlog_ratelimit {
    uint32_t interval_ms;
    uint32_t burst;
    uint64_t window_start_ms; /* protected by the internal lock */
    uint32_t printed;
    uint32_t suppressed;
};
void tlog_rl_msg(struct tlog_ratelimit *rl, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
