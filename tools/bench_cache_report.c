/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_cache_report.c: the output of tierfs-bench-cache: one report of named values printed
 * as text, CSV or JSON (--output), latency percentiles from the merged histograms.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "hybridcache/hybridcache.h"
#include "ioengine/ioengine.h"
#include "tools/bench_cache_gen.h"

#include "tools/bench_cache.h"

/* ---- output ---- */

static void bc_rep_num(struct bc_report *rep, const char *name, double v, int prec)
{
    if (rep->n < CMN_ARRAY_SIZE(rep->f))
        rep->f[rep->n++] = (struct bc_field){name, NULL, v, prec};
}

static void bc_rep_str(struct bc_report *rep, const char *name, const char *v)
{
    if (rep->n < CMN_ARRAY_SIZE(rep->f))
        rep->f[rep->n++] = (struct bc_field){name, v ? v : "", 0, 0};
}

static double bc_ratio(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 0.0;
}

void bc_build_report(const struct bc_bench *b, const struct bc_result *r, struct bc_report *rep)
{
    const struct bc_opts *o = &b->o;
    const struct hc_stats *s0 = &r->s0, *s1 = &r->s1;
    uint64_t done = r->by_src[0] + r->by_src[1] + r->by_src[2] + r->by_src[3] + r->misses;
    double secs = r->run_s > 0 ? r->run_s : 1.0;

    bc_rep_str(rep, "mode", bc_mode_names[o->mode]);
    bc_rep_str(rep, "engine", o->disk_path ? o->engine : "none");
    bc_rep_str(rep, "policy", o->policy);
    bc_rep_str(rep, "dist", o->dist == BC_DIST_ZIPF ? "zipf" : "uniform");
    bc_rep_num(rep, "zipf_s", o->dist == BC_DIST_ZIPF ? o->zipf_s : 0, 3);
    bc_rep_num(rep, "keys", (double)o->keys, 0);
    bc_rep_num(rep, "value_size", (double)o->value_size, 0);
    bc_rep_num(rep, "value_size_max", (double)o->value_max, 0);
    bc_rep_num(rep, "read_size", (double)o->read_size, 0);
    bc_rep_num(rep, "partial", o->read_size ? o->partial : 0, 0);
    bc_rep_num(rep, "readers", o->readers, 0);
    bc_rep_num(rep, "writers", o->writers, 0);
    bc_rep_num(rep, "inflight", o->inflight, 0);
    bc_rep_num(rep, "io_depth", o->io_depth, 0);
    bc_rep_num(rep, "mem_capacity", (double)o->mem, 0);
    bc_rep_num(rep, "disk_capacity", o->disk_path ? (double)s1->disk_capacity : 0, 0);
    bc_rep_num(rep, "block_size", (double)o->block_size, 0);
    bc_rep_num(rep, "compression", o->compression, 0);
    bc_rep_num(rep, "compressibility", o->compressibility, 2);
    bc_rep_num(rep, "direct_io", o->direct_io, 0);
    bc_rep_num(rep, "origin_latency_us", (double)o->origin_latency_ns / 1e3, 1);
    bc_rep_num(rep, "fill_keys", (double)r->fill_keys, 0);
    bc_rep_num(rep, "fill_s", r->fill_s, 3);
    bc_rep_num(rep, "fill_mb_s", r->fill_s > 0 ? (double)r->fill_bytes / r->fill_s / 1e6 : 0, 1);
    bc_rep_num(rep, "fill_retries", (double)r->fill_retries, 0);
    bc_rep_num(rep, "fill_lost", (double)r->fill_lost, 0);
    bc_rep_num(rep, "create_s", r->create_s, 3);
    bc_rep_num(rep, "open_recovered_entries", (double)r->open_entries, 0);
    bc_rep_num(rep, "open_recovery_ms", (double)r->open_recovery_ns / 1e6, 3);
    bc_rep_num(rep, "reopen_s", r->reopen_s, 3);
    bc_rep_num(rep, "recovered_entries", (double)r->recovered_entries, 0);
    bc_rep_num(rep, "recovery_ms", (double)r->recovery_ns / 1e6, 3);
    bc_rep_num(rep, "run_s", r->run_s, 3);
    bc_rep_num(rep, "cpu_s", r->cpu_s, 3);
    bc_rep_num(rep, "reads", (double)r->reads, 0);
    bc_rep_num(rep, "read_ops_s", (double)r->reads / secs, 1);
    bc_rep_num(rep, "read_ops_per_cpu_s", r->cpu_s > 0 ? (double)r->reads / r->cpu_s : 0, 1);
    bc_rep_num(rep, "read_mb_s", (double)r->read_bytes / secs / 1e6, 1);
    bc_rep_num(rep, "disk_hit_mb_s", (double)r->disk_read_bytes / secs / 1e6, 1);
    bc_rep_num(rep, "writes", (double)r->writes, 0);
    bc_rep_num(rep, "write_ops_s", (double)r->writes / secs, 1);
    bc_rep_num(rep, "write_mb_s", (double)r->write_bytes / secs / 1e6, 1);
    bc_rep_num(rep, "hit_mem", bc_ratio(r->by_src[HC_SRC_MEMORY], done), 4);
    bc_rep_num(rep, "hit_disk", bc_ratio(r->by_src[HC_SRC_DISK], done), 4);
    bc_rep_num(rep, "origin", bc_ratio(r->by_src[HC_SRC_ORIGIN], done), 4);
    bc_rep_num(rep, "merged", bc_ratio(r->by_src[HC_SRC_MERGED], done), 4);
    bc_rep_num(rep, "miss", bc_ratio(r->misses, done), 4);
    bc_rep_num(rep, "read_errors", (double)r->read_errors, 0);
    bc_rep_num(rep, "write_errors", (double)r->write_errors, 0);
    bc_rep_num(rep, "origin_calls", (double)r->origin_calls, 0);
    static const struct {
        const char *r, *w;
        double p;
    } pcts[] = {{"read_p50_us", "write_p50_us", 50},
                {"read_p90_us", "write_p90_us", 90},
                {"read_p99_us", "write_p99_us", 99},
                {"read_p999_us", "write_p999_us", 99.9},
                {"read_max_us", "write_max_us", 100}};
    for (size_t i = 0; i < CMN_ARRAY_SIZE(pcts); i++)
        bc_rep_num(rep, pcts[i].r, (double)bc_hist_percentile(r->rlat, pcts[i].p) / 1e3, 3);
    bc_rep_num(rep, "read_mean_us", bc_hist_mean(r->rlat) / 1e3, 3);
    bc_rep_num(rep, "handoff_mean_us",
               r->handoffs ? (double)r->handoff_ns / (double)r->handoffs / 1e3 : 0, 3);
    for (size_t i = 0; i < CMN_ARRAY_SIZE(pcts); i++)
        bc_rep_num(rep, pcts[i].w, (double)bc_hist_percentile(r->wlat, pcts[i].p) / 1e3, 3);
    bc_rep_num(rep, "mem_used", (double)s1->mem_used, 0);
    bc_rep_num(rep, "mem_limit", (double)s1->mem_limit, 0);
    bc_rep_num(rep, "disk_used", (double)s1->disk_used, 0);
    bc_rep_num(rep, "disk_entries", (double)s1->disk_entries, 0);
    bc_rep_num(rep, "disk_index_bytes", (double)s1->disk_index_bytes, 0);
    bc_rep_num(rep, "index_bytes_per_entry", bc_ratio(s1->disk_index_bytes, s1->disk_entries), 1);
    bc_rep_num(rep, "mem_overcommits", (double)(s1->mem_overcommits - s0->mem_overcommits), 0);
    bc_rep_num(rep, "admission_drops", (double)(s1->admission_drops - s0->admission_drops), 0);
    bc_rep_num(rep, "checksum_failures", (double)(s1->checksum_failures - s0->checksum_failures),
               0);
    bc_rep_num(rep, "disk_read_errors", (double)(s1->disk_read_errors - s0->disk_read_errors), 0);
    bc_rep_num(rep, "disk_write_errors", (double)(s1->disk_write_errors - s0->disk_write_errors),
               0);
    bc_rep_num(rep, "disk_bytes_read", (double)(s1->disk_bytes_read - s0->disk_bytes_read), 0);
    bc_rep_num(rep, "disk_partial_hits", (double)(s1->disk_partial_hits - s0->disk_partial_hits),
               0);
    bc_rep_num(rep, "disk_bytes_written", (double)(s1->disk_bytes_written - s0->disk_bytes_written),
               0);
    bc_rep_num(rep, "compressed_blocks", (double)s1->compressed_blocks, 0);
    bc_rep_num(rep, "compressed_saved_bytes", (double)s1->compressed_saved_bytes, 0);
    bc_rep_num(rep, "verified", (double)r->verified, 0);
    bc_rep_num(rep, "mismatches", (double)r->mismatches, 0);
    bc_rep_num(rep, "close_s", r->close_s, 3);
}

static void bc_print_num(FILE *f, const struct bc_field *x)
{
    if (x->prec == 0)
        fprintf(f, "%.0f", x->num);
    else
        fprintf(f, "%.*f", x->prec, x->num);
}

void bc_print_machine(FILE *f, const struct bc_report *rep, enum bc_out out)
{
    if (out == BC_OUT_CSV) {
        for (unsigned i = 0; i < rep->n; i++)
            fprintf(f, "%s%s", i ? "," : "", rep->f[i].name);
        fputc('\n', f);
        for (unsigned i = 0; i < rep->n; i++) {
            if (i)
                fputc(',', f);
            if (rep->f[i].str)
                fputs(rep->f[i].str, f);
            else
                bc_print_num(f, &rep->f[i]);
        }
        fputc('\n', f);
        return;
    }
    fputc('{', f);
    for (unsigned i = 0; i < rep->n; i++) {
        fprintf(f, "%s\"%s\": ", i ? ", " : "", rep->f[i].name);
        if (rep->f[i].str)
            fprintf(f, "\"%s\"", rep->f[i].str); /* our strings never need escaping */
        else
            bc_print_num(f, &rep->f[i]);
    }
    fputs("}\n", f);
}

static void bc_print_lat(FILE *f, const char *what, const struct bc_hist *h)
{
    if (!h->n)
        return;
    fprintf(f,
            "  %-6s latency us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f  "
            "(%" PRIu64 " samples)\n",
            what, (double)bc_hist_percentile(h, 50) / 1e3, (double)bc_hist_percentile(h, 90) / 1e3,
            (double)bc_hist_percentile(h, 99) / 1e3, (double)bc_hist_percentile(h, 99.9) / 1e3,
            (double)h->max / 1e3, bc_hist_mean(h) / 1e3, h->n);
}

void bc_print_text(FILE *f, const struct bc_bench *b, const struct bc_result *r)
{
    const struct bc_opts *o = &b->o;
    const struct hc_stats *s0 = &r->s0, *s1 = &r->s1;
    char a[32], c[32];
    uint64_t done = r->by_src[0] + r->by_src[1] + r->by_src[2] + r->by_src[3] + r->misses;
    double secs = r->run_s > 0 ? r->run_s : 1.0;

    fprintf(f, "%s: mode=%s policy=%s keys=%" PRIu64 " dist=%s", BC_PROG, bc_mode_names[o->mode],
            o->policy, o->keys, o->dist == BC_DIST_ZIPF ? "zipf" : "uniform");
    if (o->dist == BC_DIST_ZIPF)
        fprintf(f, "(s=%g)", o->zipf_s);
    fprintf(f, " value=%s", cmn_fmt_size(o->value_size, a, sizeof(a)));
    if (o->value_max != o->value_size)
        fprintf(f, "..%s", cmn_fmt_size(o->value_max, a, sizeof(a)));
    if (o->read_size)
        fprintf(f, " read=%s partial=%d", cmn_fmt_size(o->read_size, a, sizeof(a)), o->partial);
    fprintf(f, " readers=%ux%u writers=%u mem=%s", o->readers, o->inflight, o->writers,
            cmn_fmt_size(o->mem, a, sizeof(a)));
    if (o->disk_path)
        fprintf(f, " disk=%s engine=%s io_depth=%u direct=%d compression=%d",
                cmn_fmt_size(s1->disk_capacity, c, sizeof(c)), o->engine, o->io_depth, o->direct_io,
                o->compression);
    fputc('\n', f);
    if (r->open_entries)
        fprintf(f,
                "open:     recovered %" PRIu64 " entries of an existing cache in %.1f ms "
                "(hc_create %.1f ms)\n",
                r->open_entries, (double)r->open_recovery_ns / 1e6, r->create_s * 1e3);
    if (r->fill_keys)
        fprintf(f,
                "fill:     %" PRIu64 " keys, %s in %.2f s = %.0f MB/s (%" PRIu64
                " retries after admission drops, %" PRIu64 " lost)\n",
                r->fill_keys, cmn_fmt_size(r->fill_bytes, a, sizeof(a)), r->fill_s,
                r->fill_s > 0 ? (double)r->fill_bytes / r->fill_s / 1e6 : 0.0, r->fill_retries,
                r->fill_lost);
    if (o->reopen)
        fprintf(f,
                "reopen:   hc_destroy + hc_create %.1f ms; recovered %" PRIu64
                " entries, recovery_ns %.1f ms\n",
                r->reopen_s * 1e3, r->recovered_entries, (double)r->recovery_ns / 1e6);
    if (!o->duration_ns) {
        fprintf(f, "memory:   used %s of %s\n", cmn_fmt_size(s1->mem_used, a, sizeof(a)),
                cmn_fmt_size(s1->mem_limit, c, sizeof(c)));
        if (o->disk_path)
            fprintf(f, "disk:     used %s, %" PRIu64 " entries, index %.1f bytes/entry\n",
                    cmn_fmt_size(s1->disk_used, a, sizeof(a)), s1->disk_entries,
                    bc_ratio(s1->disk_index_bytes, s1->disk_entries));
        return;
    }
    fprintf(f, "run:      %.2f s, process CPU %.2f s (%.0f%% of one core)\n", r->run_s, r->cpu_s,
            100.0 * r->cpu_s / secs);
    if (o->readers)
        fprintf(f, "  reads:  %" PRIu64 " ops, %.0f ops/s, %.1f MB/s, %.0f ops per CPU-second\n",
                r->reads, (double)r->reads / secs, (double)r->read_bytes / secs / 1e6,
                r->cpu_s > 0 ? (double)r->reads / r->cpu_s : 0.0);
    if (o->writers)
        fprintf(f, "  writes: %" PRIu64 " ops, %.0f ops/s, %.1f MB/s\n", r->writes,
                (double)r->writes / secs, (double)r->write_bytes / secs / 1e6);
    if (o->disk_path && o->readers)
        fprintf(f, "  disk hits alone: %.1f MB/s\n", (double)r->disk_read_bytes / secs / 1e6);
    if (o->readers)
        fprintf(f,
                "  served: memory %.2f%%  disk %.2f%%  origin %.2f%%  merged %.2f%%  "
                "miss %.2f%%  errors %" PRIu64 "\n",
                100 * bc_ratio(r->by_src[HC_SRC_MEMORY], done),
                100 * bc_ratio(r->by_src[HC_SRC_DISK], done),
                100 * bc_ratio(r->by_src[HC_SRC_ORIGIN], done),
                100 * bc_ratio(r->by_src[HC_SRC_MERGED], done), 100 * bc_ratio(r->misses, done),
                r->read_errors);
    bc_print_lat(f, "read", r->rlat);
    if (r->handoffs)
        fprintf(f, "  done callback to reader: mean %.1f us (not in the read latency)\n",
                (double)r->handoff_ns / (double)r->handoffs / 1e3);
    bc_print_lat(f, "write", r->wlat);
    fprintf(f,
            "memory:   used %s of %s (in flight %s, write queue %s); %" PRIu64
            " fetches started over budget\n",
            cmn_fmt_size(s1->mem_used, a, sizeof(a)), cmn_fmt_size(s1->mem_limit, c, sizeof(c)),
            cmn_fmt_size(s1->inflight_bytes, (char[32]){0}, 32),
            cmn_fmt_size(s1->write_queue_bytes, (char[32]){0}, 32),
            s1->mem_overcommits - s0->mem_overcommits);
    if (o->disk_path) {
        fprintf(f,
                "disk:     used %s, %" PRIu64 " entries, index %.1f bytes/entry; "
                "read %s, wrote %s during the run; %" PRIu64 " partial hits\n",
                cmn_fmt_size(s1->disk_used, a, sizeof(a)), s1->disk_entries,
                bc_ratio(s1->disk_index_bytes, s1->disk_entries),
                cmn_fmt_size(s1->disk_bytes_read - s0->disk_bytes_read, c, sizeof(c)),
                cmn_fmt_size(s1->disk_bytes_written - s0->disk_bytes_written, (char[32]){0}, 32),
                s1->disk_partial_hits - s0->disk_partial_hits);
        if (o->compression)
            fprintf(f, "          %" PRIu64 " blocks compressed, %s saved\n", s1->compressed_blocks,
                    cmn_fmt_size(s1->compressed_saved_bytes, a, sizeof(a)));
    }
    fprintf(f,
            "checks:   admission drops %" PRIu64 ", checksum failures %" PRIu64
            ", disk read errors %" PRIu64 ", verified %" PRIu64 " reads, %" PRIu64 " mismatches\n",
            s1->admission_drops - s0->admission_drops,
            s1->checksum_failures - s0->checksum_failures,
            s1->disk_read_errors - s0->disk_read_errors, r->verified, r->mismatches);
}
