/* SPDX-License-Identifier: Apache-2.0 */
/*
 * creds.c: AWS credential providers: static keys, and the default chain (environment,
 * shared profile files, container endpoint, EC2 IMDSv2) that caches and refreshes.
 *
 * DESIGN
 * Each source is a function that fills a struct objstore_credentials and returns 0,
 * -ENOENT when the source simply has nothing (not configured, not on EC2), or another
 * -errno when it is configured but broken (a profile with half a key pair, a container
 * endpoint that answers 500). The chain stops at the first source that does not say
 * -ENOENT, as the AWS CLI does, so a broken configuration is reported rather than
 * silently replaced by the next source's keys.
 *
 * Order (AWS CLI): environment, profile, container endpoint, EC2 instance metadata.
 * An explicit profile (the @profile argument, i.e. -o profile=) skips the environment,
 * as the CLI's --profile does; AWS_PROFILE alone does not. An explicitly named profile
 * (argument or AWS_PROFILE) that exists in neither file fails the chain instead of
 * falling through to instance metadata.
 *
 * The chain caches what it found and refetches when the credentials are within
 * OS3_CREDS_REFRESH_AHEAD_S of their expiration. One mutex is held across a refresh,
 * so concurrent callers wait for a single fetch rather than stampeding the endpoint. A
 * failed refresh keeps serving the old credentials until they really expire, and a
 * failure is not retried for OS3_CREDS_RETRY_AFTER_S so that requests do not each pay
 * the metadata timeouts.
 *
 * HTTP sources use a libcurl easy handle per call with ~1 s timeouts (a machine that is
 * not on EC2 must not hang a mount), proxies disabled (these are link-local or loopback
 * addresses that a corporate http_proxy would swallow) and no redirects.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "common/log.h"
#include "common/util.h"
#include "objstore/objstore_i.h"

#define OS3_CREDS_REFRESH_AHEAD_S 300 /* refetch 5 minutes before expiry, as the SDKs do */
#define OS3_CREDS_RETRY_AFTER_S 10
#define OS3_CREDS_HTTP_BODY_MAX 16384
#define OS3_CREDS_URL_MAX 2048
#define OS3_CREDS_PATH_MAX 4096
#define OS3_CONTAINER_BASE "http://169.254.170.2"
#define OS3_IMDS_ENDPOINT_V4 "http://169.254.169.254"
#define OS3_IMDS_ENDPOINT_V6 "http://[fd00:ec2::254]"
#define OS3_IMDS_TOKEN_TTL_S "21600"
#define OS3_IMDS_CREDS_PATH "/latest/meta-data/iam/security-credentials/"

/* ---- small helpers ---- */

const char *os3_creds_env(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

bool os3_creds_env_true(const char *name)
{
    const char *v = os3_creds_env(name);
    return v && strcasecmp(v, "true") == 0;
}

/* Copy @src into a fixed field. @return 0, or -EINVAL (logged) when it does not fit. */
static int os3_creds_copy(char *dst, size_t cap, const char *src, const char *field,
                          const char *from)
{
    size_t n = strlen(src);
    if (n >= cap) {
        TLOG_E("credentials: %s from %s is %zu bytes, longer than the %zu supported", field, from,
               n, cap - 1);
        return -EINVAL;
    }
    memcpy(dst, src, n + 1);
    return 0;
}

/* Fill @out from parts; @token may be NULL. @return 0 or -EINVAL (logged). */
int os3_creds_fill(struct objstore_credentials *out, const char *ak, const char *sk,
                   const char *token, int64_t expiration, const char *from)
{
    memset(out, 0, sizeof(*out));
    int rc = os3_creds_copy(out->access_key, sizeof(out->access_key), ak, "access key", from);
    if (!rc)
        rc = os3_creds_copy(out->secret_key, sizeof(out->secret_key), sk, "secret key", from);
    if (!rc && token)
        rc = os3_creds_copy(out->session_token, sizeof(out->session_token), token, "session token",
                            from);
    out->expiration = expiration;
    if (rc)
        OPENSSL_cleanse(out, sizeof(*out));
    return rc;
}

static int64_t os3_creds_wall_s(void)
{
    return (int64_t)(cmn_wall_ns() / 1000000000ull);
}
static int64_t os3_creds_mono_s(void)
{
    return (int64_t)(cmn_now_ns() / 1000000000ull);
}

char *os3_creds_trim(char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* A value that goes into an HTTP header must not be able to add a header line. */
static bool os3_creds_header_safe(const char *s)
{
    return strpbrk(s, "\r\n") == NULL;
}

/* ---- environment ---- */

int os3_creds_from_env(struct objstore_credentials *out)
{
    const char *ak = os3_creds_env("AWS_ACCESS_KEY_ID");
    const char *sk = os3_creds_env("AWS_SECRET_ACCESS_KEY");
    if (!ak && !sk)
        return -ENOENT;
    if (!ak || !sk) {
        TLOG_E("credentials: %s is set but %s is not",
               ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
               ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        return -EINVAL;
    }
    return os3_creds_fill(out, ak, sk, os3_creds_env("AWS_SESSION_TOKEN"), 0, "the environment");
}

/* Credentials from a container/IMDS JSON document. @return 0 or -EIO (logged). */
static int os3_creds_from_json(const char *body, const char *from, struct objstore_credentials *out)
{
    char code[64], exp[64];
    int rc = os3_json_get(body, "Code", code, sizeof(code));
    if (rc == 0 && strcmp(code, "Success") != 0) {
        TLOG_E("credentials: %s answered Code \"%s\"", from, code);
        return -EIO;
    }
    memset(out, 0, sizeof(*out));
    rc = os3_json_get(body, "AccessKeyId", out->access_key, sizeof(out->access_key));
    if (!rc)
        rc = os3_json_get(body, "SecretAccessKey", out->secret_key, sizeof(out->secret_key));
    if (!rc) {
        rc = os3_json_get(body, "Token", out->session_token, sizeof(out->session_token));
        if (rc == -ENOENT)
            rc = 0;
    }
    if (!rc) {
        rc = os3_json_get(body, "Expiration", exp, sizeof(exp));
        if (rc == -ENOENT)
            rc = 0; /* no expiry: treat as long-lived */
        else if (!rc && os3_parse_iso8601(exp, &out->expiration) < 0)
            rc = -EINVAL;
    }
    if (rc || !out->access_key[0] || !out->secret_key[0]) {
        TLOG_E("credentials: %s sent an unusable document (%s)", from,
               rc == -ENAMETOOLONG ? "a field is too long"
               : rc == -EINVAL     ? "malformed JSON or Expiration"
                                   : "AccessKeyId/SecretAccessKey missing");
        OPENSSL_cleanse(out, sizeof(*out));
        return -EIO;
    }
    return 0;
}

/* ---- container endpoint (ECS task role, EKS pod identity) ---- */

/*
 * A FULL_URI over plain http may only point at loopback or the ECS/EKS agent addresses,
 * as the SDKs require: anything else would send the authorization token, and trust the
 * keys returned, over an unauthenticated network path.
 */
static bool os3_creds_container_url_ok(const char *url)
{
    bool ok = false;
    char *scheme = NULL, *host = NULL;
    CURLU *u = curl_url();
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        goto out;
    if (strcasecmp(scheme, "https") == 0) {
        ok = true;
    } else if (strcasecmp(scheme, "http") == 0) {
        static const char *const allowed[] = {"localhost", "169.254.170.2", "169.254.170.23",
                                              "[fd00:ec2::23]", "[::1]"};
        ok = strncmp(host, "127.", 4) == 0;
        for (size_t i = 0; i < CMN_ARRAY_SIZE(allowed); i++)
            ok = ok || strcasecmp(host, allowed[i]) == 0;
    }
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

/* The Authorization header value: the token file wins over the variable. */
static int os3_creds_container_token(char *tok, size_t cap)
{
    tok[0] = '\0';
    const char *file = os3_creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *val = os3_creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    if (file) {
        FILE *f = fopen(file, "r");
        if (!f) {
            TLOG_E("credentials: cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s: %s", file,
                   strerror(errno));
            return -EACCES;
        }
        size_t n = fread(tok, 1, cap - 1, f);
        bool more = fgetc(f) != EOF;
        fclose(f);
        tok[n] = '\0';
        if (more) {
            TLOG_E("credentials: token file %s is too large", file);
            return -EINVAL;
        }
        char *t = os3_creds_trim(tok); /* files usually end in a newline */
        memmove(tok, t, strlen(t) + 1);
    } else if (val) {
        if (strlen(val) >= cap)
            return -EINVAL;
        strcpy(tok, val);
    }
    if (!os3_creds_header_safe(tok)) {
        TLOG_E("credentials: the container authorization token holds a line break");
        return -EINVAL;
    }
    return 0;
}

int os3_creds_from_container(struct objstore_credentials *out)
{
    const char *rel = os3_creds_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = os3_creds_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (!rel && !full)
        return -ENOENT;
    char url[OS3_CREDS_URL_MAX];
    int n;
    if (rel) /* the relative form wins, as in the SDKs */
        n = snprintf(url, sizeof(url), "%s%s%s", OS3_CONTAINER_BASE, rel[0] == '/' ? "" : "/", rel);
    else
        n = snprintf(url, sizeof(url), "%s", full);
    if (n < 0 || (size_t)n >= sizeof(url))
        return -EINVAL;
    if (!rel && !os3_creds_container_url_ok(url)) {
        TLOG_E("credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI %s is neither https nor a "
               "loopback/container-agent address; refusing it",
               url);
        return -EACCES;
    }

    int rc;
    char *body = NULL;
    char *tok = malloc(OS3_CREDS_HTTP_BODY_MAX);
    char *auth = malloc(OS3_CREDS_HTTP_BODY_MAX + 32);
    if (!tok || !auth) {
        rc = -ENOMEM;
        goto free_bufs;
    }
    rc = os3_creds_container_token(tok, OS3_CREDS_HTTP_BODY_MAX);
    if (rc)
        goto free_bufs;
    snprintf(auth, OS3_CREDS_HTTP_BODY_MAX + 32, "Authorization: %s", tok);
    const char *headers[] = {"Accept: application/json", tok[0] ? auth : NULL, NULL};
    body = malloc(OS3_CREDS_HTTP_BODY_MAX);
    if (!body) {
        rc = -ENOMEM;
        goto free_bufs;
    }
    long status;
    rc = os3_creds_http("GET", url, headers, body, OS3_CREDS_HTTP_BODY_MAX, &status);
    if (rc) {
        TLOG_E("credentials: container endpoint %s: %s", url, strerror(-rc));
        goto free_bufs;
    }
    if (status != 200) {
        TLOG_E("credentials: container endpoint %s answered HTTP %ld", url, status);
        rc = status == 401 || status == 403 ? -EACCES : -EIO;
        goto free_bufs;
    }
    rc = os3_creds_from_json(body, "the container endpoint", out);
free_bufs:
    if (tok)
        OPENSSL_cleanse(tok, OS3_CREDS_HTTP_BODY_MAX);
    if (auth)
        OPENSSL_cleanse(auth, OS3_CREDS_HTTP_BODY_MAX + 32);
    if (body)
        OPENSSL_cleanse(body, OS3_CREDS_HTTP_BODY_MAX);
    free(tok);
    free(auth);
    free(body);
    return rc;
}

/* ---- EC2 instance metadata (IMDSv2) ---- */

static void os3_creds_imds_base(const char *endpoint, char *base, size_t cap)
{
    if (!endpoint)
        endpoint = os3_creds_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (!endpoint) {
        const char *mode = os3_creds_env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
        endpoint =
            mode && strcasecmp(mode, "ipv6") == 0 ? OS3_IMDS_ENDPOINT_V6 : OS3_IMDS_ENDPOINT_V4;
    }
    snprintf(base, cap, "%s", endpoint);
    size_t n = strlen(base);
    while (n && base[n - 1] == '/')
        base[--n] = '\0';
}

/* PUT /latest/api/token. @return 0 (tok may stay "" for the IMDSv1 fallback), -ENOENT when
 * nothing answers (not on EC2), or another -errno. */
static int os3_creds_imds_token(const char *base, char *body, char *tok, size_t cap)
{
    char url[OS3_CREDS_URL_MAX];
    snprintf(url, sizeof(url), "%s/latest/api/token", base);
    const char *headers[] = {"X-aws-ec2-metadata-token-ttl-seconds: " OS3_IMDS_TOKEN_TTL_S, NULL};
    long status;
    int rc = os3_creds_http("PUT", url, headers, body, OS3_CREDS_HTTP_BODY_MAX, &status);
    tok[0] = '\0';
    if (rc) {
        TLOG_D("credentials: no EC2 instance metadata at %s (%s)", base, strerror(-rc));
        return -ENOENT;
    }
    if (status == 200) {
        char *t = os3_creds_trim(body);
        if (!t[0] || strlen(t) >= cap || !os3_creds_header_safe(t)) {
            TLOG_E("credentials: EC2 metadata token from %s is unusable", base);
            return -EIO;
        }
        strcpy(tok, t);
        return 0;
    }
    /* 403/404/405: IMDSv2 off or an older emulator; the CLI then falls back to IMDSv1. */
    if ((status == 403 || status == 404 || status == 405) &&
        !os3_creds_env_true("AWS_EC2_METADATA_V1_DISABLED"))
        return 0;
    TLOG_E("credentials: EC2 metadata token request to %s answered HTTP %ld", base, status);
    return -EIO;
}

int os3_creds_from_imds(const char *imds_endpoint, struct objstore_credentials *out)
{
    if (os3_creds_env_true("AWS_EC2_METADATA_DISABLED"))
        return -ENOENT;
    char base[OS3_CREDS_URL_MAX / 2], url[OS3_CREDS_URL_MAX], tok[1024], hdr[1100];
    os3_creds_imds_base(imds_endpoint, base, sizeof(base));
    char *role_enc = NULL;
    int rc;
    char *body = malloc(OS3_CREDS_HTTP_BODY_MAX);
    if (!body)
        return -ENOMEM;
    rc = os3_creds_imds_token(base, body, tok, sizeof(tok));
    if (rc)
        goto free_body;
    snprintf(hdr, sizeof(hdr), "X-aws-ec2-metadata-token: %s", tok);
    const char *headers[] = {tok[0] ? hdr : NULL, NULL};

    /* The role name first: one role per instance profile, the first line of the listing. */
    long status;
    snprintf(url, sizeof(url), "%s" OS3_IMDS_CREDS_PATH, base);
    rc = os3_creds_http("GET", url, headers, body, OS3_CREDS_HTTP_BODY_MAX, &status);
    if (rc == 0 && status == 404) {
        TLOG_I("credentials: this EC2 instance has no IAM role attached");
        rc = -ENOENT;
        goto free_body;
    }
    if (rc == 0 && status != 200)
        rc = -EIO;
    if (rc) {
        TLOG_E("credentials: EC2 metadata %s: %s (HTTP %ld)", url, strerror(-rc), status);
        goto free_body;
    }
    body[strcspn(body, "\r\n")] = '\0';
    char *role = os3_creds_trim(body);
    role_enc = role[0] ? os3_uri_encode(role, false) : NULL;
    if (!role_enc) {
        rc = role[0] ? -ENOMEM : -ENOENT;
        goto free_body;
    }
    snprintf(url, sizeof(url), "%s" OS3_IMDS_CREDS_PATH "%s", base, role_enc);
    rc = os3_creds_http("GET", url, headers, body, OS3_CREDS_HTTP_BODY_MAX, &status);
    if (rc == 0 && status != 200)
        rc = -EIO;
    if (rc) {
        TLOG_E("credentials: EC2 metadata %s: %s (HTTP %ld)", url, strerror(-rc), status);
        goto free_body;
    }
    rc = os3_creds_from_json(body, "EC2 instance metadata", out);
free_body:
    free(role_enc);
    OPENSSL_cleanse(body, OS3_CREDS_HTTP_BODY_MAX);
    OPENSSL_cleanse(tok, sizeof(tok));
    free(body);
    return rc;
}

/* ---- static provider ---- */

struct os3_creds_static {
    struct objstore_creds base; /* first */
    struct objstore_credentials cr;
};

static int os3_creds_static_fetch(struct objstore_creds *c, struct objstore_credentials *out)
{
    *out = ((struct os3_creds_static *)c)->cr;
    return 0;
}

static void os3_creds_static_destroy(struct objstore_creds *c)
{
    OPENSSL_cleanse(c, sizeof(struct os3_creds_static));
    free(c);
}

static const struct objstore_creds_ops os3_creds_static_ops = {
    .name = "static",
    .fetch = os3_creds_static_fetch,
    .destroy = os3_creds_static_destroy,
};

int objstore_creds_static(const char *access_key, const char *secret_key, const char *token,
                          struct objstore_creds **out)
{
    if (!access_key || !access_key[0] || !secret_key || !secret_key[0] || !out)
        return -EINVAL;
    struct os3_creds_static *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->base.ops = &os3_creds_static_ops;
    int rc = os3_creds_fill(&s->cr, access_key, secret_key, token, 0, "the configuration");
    if (rc) {
        free(s);
        return rc;
    }
    *out = &s->base;
    return 0;
}

/* ---- the default chain ---- */

struct os3_creds_chain {
    struct objstore_creds base;      /* first */
    char *profile;                   /* explicit profile argument (skips env), or NULL */
    pthread_mutex_t lock;            /* guards the fields below */
    pthread_cond_t done;             /* a refresh finished */
    bool refreshing;                 /* by lock: a thread is resolving the chain */
    struct objstore_credentials cur; /* by lock */
    bool have;                       /* by lock: cur is valid */
    char source[96];                 /* by lock: which source gave cur */
    int64_t got_at;                  /* by lock: wall s when cur was fetched */
    int64_t quiet_until;             /* by lock: monotonic s; no new attempt before this */
    int last_err;                    /* by lock: result of the last failed attempt */
};

/* Explaining (objstore_creds_explain): the thread's notes go here. */
static __thread FILE *os3_creds_explain_out;

void os3_creds_why(const char *fmt, ...)
{
    va_list ap;

    if (!os3_creds_explain_out)
        return;
    fputs("  ", os3_creds_explain_out);
    va_start(ap, fmt);
    vfprintf(os3_creds_explain_out, fmt, ap);
    va_end(ap);
    fputc('\n', os3_creds_explain_out);
}

void os3_creds_key_hint(const char *ak, char *out, size_t cap)
{
    size_t n = strlen(ak);
    if (n < 12)
        snprintf(out, cap, "(%zu characters)", n);
    else
        snprintf(out, cap, "%.4s...%s", ak, ak + n - 4);
}

/* One source of the chain: @rc its result. @return true when the chain stops here. */
static bool os3_creds_step(int rc, const char *what, const char *source, char *src_out, size_t cap)
{
    if (rc == -ENOENT) {
        os3_creds_why("%s: nothing there, next", what);
        return false;
    }
    snprintf(src_out, cap, "%s", source);
    if (!rc)
        os3_creds_why("%s: taken", what);
    else
        os3_creds_why("%s: configured but failed (%s): the chain stops here", what, strerror(-rc));
    return true;
}

/*
 * Walk the sources in the SDKs' order (tierfs(1), CREDENTIALS): the environment's keys,
 * the profile's assumed role, a web identity (the environment's, else the profile's), the
 * profile's keys or credential_process, the container endpoint, EC2 instance metadata.
 * An explicit profile (-o profile=) skips the environment's keys and web identity, as the
 * SDKs' explicit profile does. @return 0 and @source, or -errno (logged).
 */
static int os3_creds_chain_resolve(const char *profile, struct objstore_credentials *out,
                                   char *source, size_t scap)
{
    const char *name = os3_creds_profile_name(profile);
    char what[300], label[96];
    bool found = false, any = false;
    int rc;

    if (!profile) {
        rc = os3_creds_from_env(out);
        if (os3_creds_step(rc, "environment (AWS_ACCESS_KEY_ID)", "environment", source, scap))
            return rc;
    }
    snprintf(what, sizeof(what),
             "profile '%s': role_arn with source_profile or "
             "credential_source",
             name);
    rc = os3_creds_profile_part(name, OS3_PROFILE_ROLE, out, &found);
    any |= found;
    snprintf(label, sizeof(label), "profile '%s' (assumed role)", name);
    if (os3_creds_step(rc, what, label, source, scap))
        return rc;
    if (!profile) {
        rc = os3_creds_web_identity_env(out);
        if (os3_creds_step(rc, "environment (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN)",
                           "web identity (environment)", source, scap))
            return rc;
    }
    snprintf(what, sizeof(what), "profile '%s': role_arn with web_identity_token_file", name);
    rc = os3_creds_profile_part(name, OS3_PROFILE_WEB_IDENTITY, out, &found);
    snprintf(label, sizeof(label), "profile '%s' (web identity)", name);
    if (os3_creds_step(rc, what, label, source, scap))
        return rc;
    snprintf(what, sizeof(what), "profile '%s': keys or credential_process", name);
    rc = os3_creds_profile_part(name, OS3_PROFILE_KEYS, out, &found);
    snprintf(label, sizeof(label), "profile '%s'", name);
    if (os3_creds_step(rc, what, label, source, scap))
        return rc;
    char cred_path[OS3_CREDS_PATH_MAX], conf_path[OS3_CREDS_PATH_MAX];
    os3_creds_profile_paths(cred_path, conf_path, sizeof(cred_path));
    if (!any && !found && (profile || os3_creds_env("AWS_PROFILE"))) {
        TLOG_E("credentials: profile '%s' not found in %s or %s", name,
               cred_path[0] ? cred_path : "(no credentials file)",
               conf_path[0] ? conf_path : "(no config file)");
        os3_creds_why("profile '%s' was asked for and exists in neither file: the chain stops",
                      name);
        return -EACCES;
    }
    rc = os3_creds_from_container(out);
    if (os3_creds_step(rc, "container endpoint (AWS_CONTAINER_CREDENTIALS_*_URI)",
                       "container endpoint", source, scap))
        return rc;
    rc = os3_creds_from_imds(NULL, out);
    if (os3_creds_step(rc, "EC2 instance metadata (IMDSv2)", "EC2 instance metadata", source, scap))
        return rc;
    TLOG_E("credentials: none found; tried %sprofile '%s' (%s, %s), the container endpoint "
           "(AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI unset) and EC2 instance metadata "
           "(%s)",
           profile ? ""
                   : "the environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                     "AWS_WEB_IDENTITY_TOKEN_FILE), ",
           name, cred_path[0] ? cred_path : "no credentials file",
           conf_path[0] ? conf_path : "no config file",
           os3_creds_env_true("AWS_EC2_METADATA_DISABLED") ? "disabled" : "unreachable or no role");
    return -EACCES;
}

/* Whether @cr (fetched at @got_at) is still good to use without a refresh at @now: a
 * refresh starts OS3_CREDS_REFRESH_AHEAD_S before the expiry, or half-way through a
 * shorter life (credentials of a few minutes are refreshed before they run out too). */
static bool os3_creds_fresh(const struct objstore_credentials *cr, int64_t got_at, int64_t now)
{
    if (cr->expiration == 0)
        return true;
    int64_t ahead = CMN_MIN((int64_t)OS3_CREDS_REFRESH_AHEAD_S, (cr->expiration - got_at) / 2);
    return now < cr->expiration - CMN_MAX(ahead, 1);
}

/*
 * The cached credentials, refreshed when due. One thread refreshes at a time; the
 * others keep signing with the current credentials while they are valid (no request
 * waits for STS or a helper then), or wait for the refresh when there are none.
 */
static int os3_creds_chain_fetch(struct objstore_creds *c, struct objstore_credentials *out)
{
    struct os3_creds_chain *ch = (struct os3_creds_chain *)c;
    int rc = 0;
    pthread_mutex_lock(&ch->lock);
    for (;;) {
        int64_t now = os3_creds_wall_s();
        if (ch->have && os3_creds_fresh(&ch->cur, ch->got_at, now))
            goto serve;
        if (ch->refreshing) {
            if (ch->have && now < ch->cur.expiration)
                goto serve;
            pthread_cond_wait(&ch->done, &ch->lock);
            continue;
        }
        if (os3_creds_mono_s() < ch->quiet_until) {
            /* a recent attempt failed: do not pay the timeouts again on every request */
            if (ch->have && now < ch->cur.expiration)
                goto serve;
            rc = ch->last_err;
            goto unlock;
        }
        break;
    }
    ch->refreshing = true;
    pthread_mutex_unlock(&ch->lock);
    struct objstore_credentials fresh;
    char source[sizeof(ch->source)];
    rc = os3_creds_chain_resolve(ch->profile, &fresh, source, sizeof(source));
    pthread_mutex_lock(&ch->lock);
    ch->refreshing = false;
    pthread_cond_broadcast(&ch->done);
    int64_t now = os3_creds_wall_s();
    if (rc == 0) {
        if (!ch->have || strcmp(ch->source, source) != 0)
            TLOG_I("credentials: using %s%s", source, fresh.expiration ? " (temporary)" : "");
        else if (fresh.expiration)
            TLOG_D("credentials: refreshed from %s", source);
        ch->cur = fresh;
        ch->have = true;
        ch->got_at = now;
        snprintf(ch->source, sizeof(ch->source), "%s", source);
        OPENSSL_cleanse(&fresh, sizeof(fresh));
        goto serve;
    }
    ch->last_err = rc;
    ch->quiet_until = os3_creds_mono_s() + OS3_CREDS_RETRY_AFTER_S;
    if (ch->have && now < ch->cur.expiration) {
        TLOG_W("credentials: refresh from %s failed (%s); using the current ones until they "
               "expire in %llds",
               ch->source, strerror(-rc), (long long)(ch->cur.expiration - now));
        rc = 0;
        goto serve;
    }
    ch->have = false;
    goto unlock;
serve:
    *out = ch->cur;
unlock:
    pthread_mutex_unlock(&ch->lock);
    return rc;
}

static void os3_creds_chain_destroy(struct objstore_creds *c)
{
    struct os3_creds_chain *ch = (struct os3_creds_chain *)c;
    pthread_cond_destroy(&ch->done);
    pthread_mutex_destroy(&ch->lock);
    free(ch->profile);
    OPENSSL_cleanse(&ch->cur, sizeof(ch->cur));
    free(ch);
}

static const struct objstore_creds_ops os3_creds_chain_ops = {
    .name = "default-chain",
    .fetch = os3_creds_chain_fetch,
    .destroy = os3_creds_chain_destroy,
};

int objstore_creds_default(const char *profile, struct objstore_creds **out)
{
    if (!out)
        return -EINVAL;
    struct os3_creds_chain *ch = calloc(1, sizeof(*ch));
    if (!ch)
        return -ENOMEM;
    ch->base.ops = &os3_creds_chain_ops;
    if (profile && profile[0]) {
        ch->profile = strdup(profile);
        if (!ch->profile)
            goto free_chain;
    }
    if (pthread_mutex_init(&ch->lock, NULL) != 0)
        goto free_profile;
    if (pthread_cond_init(&ch->done, NULL) != 0)
        goto free_lock;
    *out = &ch->base;
    return 0;
free_lock:
    pthread_mutex_destroy(&ch->lock);
free_profile:
    free(ch->profile);
free_chain:
    free(ch);
    return -ENOMEM;
}

int objstore_creds_explain(const char *profile, FILE *out)
{
    struct objstore_credentials cr;
    char source[96], hint[48];

    fprintf(out, "credentials: the chain, in order%s:\n",
            profile && profile[0] ? " (an explicit profile: the environment is skipped)" : "");
    os3_creds_explain_out = out;
    int rc = os3_creds_chain_resolve(profile && profile[0] ? profile : NULL, &cr, source,
                                     sizeof(source));
    os3_creds_explain_out = NULL;
    if (rc) {
        fprintf(out, "credentials: none usable (%s); see the error above\n", strerror(-rc));
        return rc;
    }
    os3_creds_key_hint(cr.access_key, hint, sizeof(hint));
    fprintf(out, "credentials: chosen: %s; access key %s%s", source, hint,
            cr.session_token[0] ? ", with a session token" : "");
    if (cr.expiration) {
        char when[32];
        time_t t = (time_t)cr.expiration;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        fprintf(out, ", expires %s (refreshed before then)", when);
    }
    fputc('\n', out);
    OPENSSL_cleanse(&cr, sizeof(cr));
    return 0;
}

/* ---- wrappers ---- */

int objstore_creds_get(struct objstore_creds *c, struct objstore_credentials *out)
{
    if (!c || !out)
        return -EINVAL;
    return c->ops->fetch(c, out);
}

void objstore_creds_destroy(struct objstore_creds *c)
{
    if (c)
        c->ops->destroy(c);
}
