/* SPDX-License-Identifier: Apache-2.0 */
/*
 * creds_sts.c: temporary credentials from AWS STS: AssumeRoleWithWebIdentity (a
 * Kubernetes service account token, IRSA) and AssumeRole (a profile's role_arn, signed
 * with its source's credentials).
 *
 * DESIGN
 * One POST of a form (Action=...&Version=2011-06-15&...) per call, as the SDKs send it,
 * to the endpoint os3_sts_endpoint picks: AWS_ENDPOINT_URL_STS when set (tests, VPC
 * endpoints, other clouds), else the regional endpoint (sts.REGION.amazonaws.com, the
 * SDKs' default since 2022) unless AWS_STS_REGIONAL_ENDPOINTS=legacy, else the global one
 * (sts.amazonaws.com, signed for us-east-1). AssumeRoleWithWebIdentity is not signed (the
 * token is the proof); AssumeRole is signed with SigV4 for service "sts". The token file is
 * read at every call: Kubernetes rotates it (about hourly) and an old one is refused.
 * Neither the token nor the keys are ever logged; STS's error code and message are.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "common/util.h"
#include "objstore/objstore_i.h"

#define OS3_STS_VERSION "2011-06-15"
#define OS3_STS_BODY_MAX 16384
#define OS3_STS_TOKEN_MAX 16384 /* a web identity token (a JWT; EKS's are ~1 KiB) */
#define OS3_STS_FORM_MAX (OS3_STS_TOKEN_MAX * 3 + 4096)

static const char *os3_sts_env(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

void os3_sts_endpoint(const char *region, const char *regional_mode, char *url, size_t cap,
                      char *region_out, size_t rcap)
{
    const char *over = os3_sts_env("AWS_ENDPOINT_URL_STS");
    const char *mode = os3_sts_env("AWS_STS_REGIONAL_ENDPOINTS");

    if (!region || !region[0])
        region = os3_sts_env("AWS_REGION");
    if (!region)
        region = os3_sts_env("AWS_DEFAULT_REGION");
    if (!mode)
        mode = regional_mode;
    bool legacy = mode && strcasecmp(mode, "legacy") == 0;
    if (!region || (legacy && strncmp(region, "cn-", 3) != 0)) {
        /* the global endpoint lives in us-east-1 */
        snprintf(region_out, rcap, "us-east-1");
        snprintf(url, cap, "https://sts.amazonaws.com/");
    } else {
        snprintf(region_out, rcap, "%s", region);
        snprintf(url, cap, "https://sts.%s.amazonaws.com%s/", region,
                 strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
    }
    if (over) {
        size_t n = strlen(over);
        snprintf(url, cap, "%s%s", over, n && over[n - 1] == '/' ? "" : "/");
    }
}

/* Append "&name=value" (value form-encoded) to @form. @return 0 or -ENOSPC. */
static int os3_sts_param(char *form, size_t cap, const char *name, const char *value)
{
    char *enc = os3_uri_encode(value, false);
    if (!enc)
        return -ENOMEM;
    size_t len = strlen(form);
    int n = snprintf(form + len, cap - len, "%s%s=%s", len ? "&" : "", name, enc);
    free(enc);
    return n < 0 || (size_t)n >= cap - len ? -ENOSPC : 0;
}

/* The form of @action for role @r (the web identity token, if any, is added by the caller). */
static int os3_sts_form(const char *action, const struct os3_sts_role *r, char *form, size_t cap)
{
    char session[64], dur[16];
    int rc;

    form[0] = '\0';
    if (r->session_name && r->session_name[0])
        snprintf(session, sizeof(session), "%s", r->session_name);
    else /* what the SDKs do: a name that says who and when */
        snprintf(session, sizeof(session), "tierfs-%lld", (long long)time(NULL));
    rc = os3_sts_param(form, cap, "Action", action);
    if (!rc)
        rc = os3_sts_param(form, cap, "Version", OS3_STS_VERSION);
    if (!rc)
        rc = os3_sts_param(form, cap, "RoleArn", r->role_arn);
    if (!rc)
        rc = os3_sts_param(form, cap, "RoleSessionName", session);
    if (!rc && r->duration_s > 0) {
        snprintf(dur, sizeof(dur), "%d", r->duration_s);
        rc = os3_sts_param(form, cap, "DurationSeconds", dur);
    }
    if (!rc && r->external_id && r->external_id[0])
        rc = os3_sts_param(form, cap, "ExternalId", r->external_id);
    return rc;
}

/* POST @form to STS (@auth: extra headers, NULL-terminated, or NULL) and parse the reply
 * to @action. @return 0 or -errno (logged). */
static int os3_sts_call(const char *action, const char *url, const char *const *extra,
                        const char *form, const char *role_arn, struct objstore_credentials *out)
{
    const char *headers[8];
    size_t nh = 0;
    char *body = malloc(OS3_STS_BODY_MAX);
    long status = 0;
    int rc;

    if (!body)
        return -ENOMEM;
    headers[nh++] = "Content-Type: application/x-www-form-urlencoded; charset=utf-8";
    headers[nh++] = "Accept: text/xml";
    for (; extra && *extra && nh < CMN_ARRAY_SIZE(headers) - 1; extra++)
        headers[nh++] = *extra;
    headers[nh] = NULL;
    rc = os3_creds_http_remote("POST", url, headers, form, body, OS3_STS_BODY_MAX, &status);
    if (rc) {
        TLOG_E("credentials: STS %s at %s for %s: %s", action, url, role_arn, strerror(-rc));
        goto out;
    }
    if (status != 200) {
        char code[128], msg[512];
        if (os3_xml_parse_sts_error(body, strlen(body), code, sizeof(code), msg, sizeof(msg)))
            snprintf(code, sizeof(code), "no STS error document"), msg[0] = '\0';
        TLOG_E("credentials: STS %s for %s: HTTP %ld, %s%s%s", action, role_arn, status, code,
               msg[0] ? ": " : "", msg);
        /* a refusal (bad token, no trust, expired token) is not worth retrying at once */
        rc = status >= 400 && status < 500 ? -EACCES : -EIO;
        goto out;
    }
    rc = os3_xml_parse_sts(body, strlen(body), action, out);
    if (rc)
        TLOG_E("credentials: STS %s for %s: the reply has no usable Credentials", action, role_arn);
out:
    OPENSSL_cleanse(body, OS3_STS_BODY_MAX); /* it held keys */
    free(body);
    return rc;
}

/* Read the token file whole, trimmed. @return 0 or -errno (logged). */
static int os3_sts_read_token(const char *path, char *tok, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        TLOG_E("credentials: web identity token file %s: %s", path, strerror(e));
        return -e;
    }
    size_t n = fread(tok, 1, cap - 1, f);
    bool more = fgetc(f) != EOF;
    fclose(f);
    tok[n] = '\0';
    while (n && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
        tok[--n] = '\0';
    if (more || n == 0) {
        TLOG_E("credentials: web identity token file %s is %s", path,
               more ? "larger than 16 KiB" : "empty");
        return -EINVAL;
    }
    return 0;
}

int os3_sts_web_identity(const struct os3_sts_role *r, const char *token_file,
                         struct objstore_credentials *out)
{
    char url[1024], region[64];
    char *tok = malloc(OS3_STS_TOKEN_MAX), *form = malloc(OS3_STS_FORM_MAX);
    int rc = -ENOMEM;

    if (!tok || !form)
        goto out;
    rc = os3_sts_read_token(token_file, tok, OS3_STS_TOKEN_MAX);
    if (rc)
        goto out;
    rc = os3_sts_form("AssumeRoleWithWebIdentity", r, form, OS3_STS_FORM_MAX);
    if (!rc)
        rc = os3_sts_param(form, OS3_STS_FORM_MAX, "WebIdentityToken", tok);
    if (rc)
        goto out;
    os3_sts_endpoint(r->region, r->regional_mode, url, sizeof(url), region, sizeof(region));
    rc = os3_sts_call("AssumeRoleWithWebIdentity", url, NULL, form, r->role_arn, out);
out:
    if (tok)
        OPENSSL_cleanse(tok, OS3_STS_TOKEN_MAX);
    if (form)
        OPENSSL_cleanse(form, OS3_STS_FORM_MAX);
    free(tok);
    free(form);
    return rc;
}

/* Host (and port) of @url, for the signed Host header. @return 0 or -EINVAL. */
static int os3_sts_host(const char *url, char *host, size_t cap)
{
    const char *p = strstr(url, "://");
    if (!p)
        return -EINVAL;
    p += 3;
    size_t n = strcspn(p, "/?#");
    if (n == 0 || n >= cap)
        return -EINVAL;
    memcpy(host, p, n);
    host[n] = '\0';
    return 0;
}

int os3_sts_assume_role(const struct os3_sts_role *r, const struct objstore_credentials *src,
                        struct objstore_credentials *out)
{
    char url[1024], region[64], host[256], date[17], hash[65], auth[1024], form[4096];
    char h_date[64], h_auth[1100], *h_tok = NULL;
    const char *extra[4] = {NULL};
    int rc;

    rc = os3_sts_form("AssumeRole", r, form, sizeof(form));
    if (rc)
        return rc;
    os3_sts_endpoint(r->region, r->regional_mode, url, sizeof(url), region, sizeof(region));
    if (os3_sts_host(url, host, sizeof(host))) {
        TLOG_E("credentials: STS endpoint '%s' is not a URL", url);
        return -EINVAL;
    }
    os3_amz_date((int64_t)time(NULL), date);
    os3_sha256_hex(form, strlen(form), hash);
    struct os3_kv hdrs[4] = {
        {"host", host},
        {"content-type", "application/x-www-form-urlencoded; charset=utf-8"},
        {"x-amz-date", date},
        {"x-amz-security-token", src->session_token},
    };
    struct os3_sign_input in = {.method = "POST",
                                .canonical_uri = "/",
                                .headers = hdrs,
                                .n_headers = src->session_token[0] ? 4 : 3,
                                .payload_hash = hash,
                                .amz_date = date,
                                .region = region,
                                .service = "sts"};
    rc = os3_sigv4_authorization(&in, src, auth, sizeof(auth));
    if (rc)
        return rc;
    snprintf(h_date, sizeof(h_date), "X-Amz-Date: %s", date);
    snprintf(h_auth, sizeof(h_auth), "Authorization: %s", auth);
    extra[0] = h_date;
    extra[1] = h_auth;
    if (src->session_token[0]) {
        size_t n = strlen(src->session_token) + 32;
        h_tok = malloc(n);
        if (!h_tok)
            return -ENOMEM;
        snprintf(h_tok, n, "X-Amz-Security-Token: %s", src->session_token);
        extra[2] = h_tok;
    }
    rc = os3_sts_call("AssumeRole", url, extra, form, r->role_arn, out);
    if (h_tok) {
        OPENSSL_cleanse(h_tok, strlen(h_tok));
        free(h_tok);
    }
    return rc;
}
