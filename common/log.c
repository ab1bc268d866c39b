/* SPDX-License-Identifier: Apache-2.0 */
/* log.c: level-filtered logging to stderr, syslog or a test sink. */
#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int tlog_level_cur = TLOG_NOTICE;
static bool tlog_syslog_on;
static tlog_sink_fn tlog_sink;
static void *tlog_sink_arg;
static pthread_mutex_t tlog_rl_lock = PTHREAD_MUTEX_INITIALIZER;

void tlog_set_level(int level)
{
    if (level < TLOG_ERR)
        level = TLOG_ERR;
    if (level > TLOG_DEBUG)
        level = TLOG_DEBUG;
    __atomic_store_n(&tlog_level_cur, level, __ATOMIC_RELAXED);
}

int tlog_get_level(void)
{
    return __atomic_load_n(&tlog_level_cur, __ATOMIC_RELAXED);
}

int tlog_parse_level(const char *name)
{
    static const struct {
        const char *name;
        int level;
    } tab[] = {{"err", TLOG_ERR},      {"error", TLOG_ERR},     {"warning", TLOG_WARNING},
               {"warn", TLOG_WARNING}, {"notice", TLOG_NOTICE}, {"info", TLOG_INFO},
               {"debug", TLOG_DEBUG}};
    if (!name || !*name)
        return -EINVAL;
    if (name[0] >= '0' && name[0] <= '7' && name[1] == '\0')
        return name[0] - '0' < TLOG_ERR ? TLOG_ERR : name[0] - '0';
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
        if (strcasecmp(name, tab[i].name) == 0)
            return tab[i].level;
    return -EINVAL;
}

void tlog_use_syslog(const char *ident)
{
    openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    tlog_syslog_on = true;
}

void tlog_set_sink(tlog_sink_fn fn, void *arg)
{
    tlog_sink_arg = arg;
    tlog_sink = fn;
}

static const char *tlog_level_name(int level)
{
    switch (level) {
    case TLOG_ERR:
        return "error";
    case TLOG_WARNING:
        return "warning";
    case TLOG_NOTICE:
        return "notice";
    case TLOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

void tlog_vmsg(int level, const char *fmt, va_list ap)
{
    char buf[1024];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    if (tlog_sink) {
        tlog_sink(level, buf, tlog_sink_arg);
        return;
    }
    if (tlog_syslog_on) {
        syslog(level, "%s", buf);
        return;
    }
    /* One fprintf per line keeps lines from different threads whole. */
    fprintf(stderr, "tierfs: %s: %s\n", tlog_level_name(level), buf);
}

void tlog_msg(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tlog_vmsg(level, fmt, ap);
    va_end(ap);
}

static uint64_t tlog_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void tlog_rl_msg(struct tlog_ratelimit *rl, int level, const char *fmt, ...)
{
    if (level > tlog_get_level())
        return;
    uint64_t now = tlog_now_ms();
    uint32_t dropped = 0;
    bool print = false;

    pthread_mutex_lock(&tlog_rl_lock);
    if (now - rl->window_start_ms >= rl->interval_ms || rl->window_start_ms == 0) {
        dropped = rl->suppressed;
        rl->suppressed = 0;
        rl->printed = 0;
        rl->window_start_ms = now ? now : 1;
    }
    if (rl->printed < (rl->burst ? rl->burst : 1)) {
        rl->printed++;
        print = true;
    } else {
        rl->suppressed++;
    }
    pthread_mutex_unlock(&tlog_rl_lock);

    if (!print)
        return;
    if (dropped)
        tlog_msg(level, "(%u similar messages suppressed)", dropped);
    va_list ap;
    va_start(ap, fmt);
    tlog_vmsg(level, fmt, ap);
    va_end(ap);
}
