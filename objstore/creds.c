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
#include <pwd.h>
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

static const char *os3_creds_env(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

static bool os3_creds_env_true(const char *name)
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
static int os3_creds_fill(struct objstore_credentials *out, const char *ak, const char *sk,
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

static char *os3_creds_trim(char *s)
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

/* ---- shared credentials / config files ---- */

/* What one file says about one profile. */
struct os3_creds_ini {
    bool section_found;
    char access_key[sizeof(((struct objstore_credentials *)0)->access_key)];
    char secret_key[sizeof(((struct objstore_credentials *)0)->secret_key)];
    char session_token[sizeof(((struct objstore_credentials *)0)->session_token)];
    char security_token[sizeof(((struct objstore_credentials *)0)->session_token)];
    bool too_long;
};

/* Does the section header text name @profile? Config files say "profile NAME"
 * (and plain "default"); credentials files say just "NAME". */
static bool os3_creds_ini_section_match(const char *section, const char *profile, bool config_style)
{
    if (!config_style)
        return strcmp(section, profile) == 0;
    if (strcmp(section, "default") == 0)
        return strcmp(profile, "default") == 0;
    if (strncmp(section, "profile", 7) != 0 || !isspace((unsigned char)section[7]))
        return false; /* [sso-session x], [services x], ... are not profiles */
    const char *name = section + 7;
    while (isspace((unsigned char)*name))
        name++;
    return strcmp(name, profile) == 0;
}

static void os3_creds_ini_set(struct os3_creds_ini *res, char *dst, size_t cap, const char *value)
{
    size_t n = strlen(value);
    if (n >= cap) {
        res->too_long = true;
        return;
    }
    memcpy(dst, value, n + 1);
}

/*
 * Read @profile's keys from the INI file at @path. Follows the CLI's parser: '#' and ';'
 * start comment lines, "key = value" or "key: value", key names case-insensitive, and an
 * indented line after a key is a nested setting (e.g. "s3 =\n  addressing_style = path")
 * rather than a key of the profile. A missing file is no error.
 * @return 0, or -EINVAL when a value does not fit (logged).
 */
static int os3_creds_ini_read(const char *path, const char *profile, bool config_style,
                              struct os3_creds_ini *res)
{
    memset(res, 0, sizeof(*res));
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno != ENOENT)
            TLOG_W("credentials: cannot read %s: %s", path, strerror(errno));
        return 0;
    }
    char *line = NULL;
    size_t linecap = 0;
    bool in_profile = false, key_seen = false;
    while (getline(&line, &linecap, f) >= 0) {
        bool indented = line[0] == ' ' || line[0] == '\t';
        char *s = os3_creds_trim(line);
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *end = strrchr(s, ']');
            if (!end)
                continue; /* malformed header: the CLI would refuse the file; ignore it */
            *end = '\0';
            in_profile = os3_creds_ini_section_match(os3_creds_trim(s + 1), profile, config_style);
            res->section_found |= in_profile;
            key_seen = false;
            continue;
        }
        if (indented && key_seen)
            continue; /* nested setting of the previous key */
        char *sep = strpbrk(s, "=:");
        if (!sep)
            continue;
        *sep = '\0';
        key_seen = true;
        if (!in_profile)
            continue;
        char *key = os3_creds_trim(s), *value = os3_creds_trim(sep + 1);
        if (strcasecmp(key, "aws_access_key_id") == 0)
            os3_creds_ini_set(res, res->access_key, sizeof(res->access_key), value);
        else if (strcasecmp(key, "aws_secret_access_key") == 0)
            os3_creds_ini_set(res, res->secret_key, sizeof(res->secret_key), value);
        else if (strcasecmp(key, "aws_session_token") == 0)
            os3_creds_ini_set(res, res->session_token, sizeof(res->session_token), value);
        else if (strcasecmp(key, "aws_security_token") == 0) /* the old name */
            os3_creds_ini_set(res, res->security_token, sizeof(res->security_token), value);
    }
    free(line);
    fclose(f);
    if (res->too_long) {
        TLOG_E("credentials: a value of profile '%s' in %s is too long", profile, path);
        return -EINVAL;
    }
    return 0;
}

/* Expand a leading "~/" with $HOME (or the password database). @return 0 / -ENAMETOOLONG. */
static int os3_creds_expand_home(const char *path, char *out, size_t cap)
{
    const char *home = NULL;
    if (path[0] == '~' && (path[1] == '/' || path[1] == '\0')) {
        home = os3_creds_env("HOME");
        struct passwd pw, *pwp = NULL;
        char pwbuf[1024];
        if (!home && getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &pwp) == 0 && pwp)
            home = pwp->pw_dir;
        if (!home)
            return -ENOENT;
        path++;
    }
    int n = snprintf(out, cap, "%s%s", home ? home : "", path);
    return (n < 0 || (size_t)n >= cap) ? -ENAMETOOLONG : 0;
}

static void os3_creds_profile_paths(char *cred_path, char *conf_path, size_t cap)
{
    const char *c = os3_creds_env("AWS_SHARED_CREDENTIALS_FILE");
    const char *k = os3_creds_env("AWS_CONFIG_FILE");
    if (os3_creds_expand_home(c ? c : "~/.aws/credentials", cred_path, cap) < 0)
        cred_path[0] = '\0';
    if (os3_creds_expand_home(k ? k : "~/.aws/config", conf_path, cap) < 0)
        conf_path[0] = '\0';
}

static const char *os3_creds_profile_name(const char *profile)
{
    if (profile && profile[0])
        return profile;
    const char *env = os3_creds_env("AWS_PROFILE");
    return env ? env : "default";
}

/* Turn one file's view of the profile into credentials. @return 0, -ENOENT, -EINVAL. */
static int os3_creds_ini_take(const struct os3_creds_ini *ini, const char *name, const char *path,
                              struct objstore_credentials *out)
{
    if (!ini->access_key[0] && !ini->secret_key[0])
        return -ENOENT;
    if (!ini->access_key[0] || !ini->secret_key[0]) {
        TLOG_E("credentials: profile '%s' in %s has %s but not %s", name, path,
               ini->access_key[0] ? "aws_access_key_id" : "aws_secret_access_key",
               ini->access_key[0] ? "aws_secret_access_key" : "aws_access_key_id");
        return -EINVAL;
    }
    const char *token = ini->session_token[0] ? ini->session_token : ini->security_token;
    return os3_creds_fill(out, ini->access_key, ini->secret_key, token, 0, path);
}

/*
 * The profile source; @found says whether the profile exists in either file (the chain
 * treats a missing, explicitly named profile as an error).
 */
static int os3_creds_profile_load(const char *profile, struct objstore_credentials *out,
                                  bool *found)
{
    const char *name = os3_creds_profile_name(profile);
    char cred_path[OS3_CREDS_PATH_MAX], conf_path[OS3_CREDS_PATH_MAX];
    os3_creds_profile_paths(cred_path, conf_path, sizeof(cred_path));
    *found = false;

    /* struct os3_creds_ini holds two 2 KiB tokens: keep it off small thread stacks */
    struct os3_creds_ini *ini = malloc(sizeof(*ini));
    if (!ini)
        return -ENOMEM;
    /* The credentials file wins over the config file, as in the CLI. */
    const struct {
        const char *path;
        bool config_style;
    } files[] = {{cred_path, false}, {conf_path, true}};
    int rc = -ENOENT;
    for (size_t i = 0; i < CMN_ARRAY_SIZE(files); i++) {
        if (!files[i].path[0])
            continue;
        rc = os3_creds_ini_read(files[i].path, name, files[i].config_style, ini);
        *found |= ini->section_found;
        if (!rc)
            rc = os3_creds_ini_take(ini, name, files[i].path, out);
        if (rc != -ENOENT)
            goto done;
    }
    rc = -ENOENT;
    if (*found)
        TLOG_W("credentials: profile '%s' has no aws_access_key_id/aws_secret_access_key "
               "(role, SSO and credential_process profiles are not supported)",
               name);
done:
    OPENSSL_cleanse(ini, sizeof(*ini));
    free(ini);
    return rc;
}

int os3_creds_from_profile(const char *profile, struct objstore_credentials *out)
{
    bool found;
    return os3_creds_profile_load(profile, out, &found);
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
    pthread_mutex_t lock;            /* held across a whole refresh */
    struct objstore_credentials cur; /* by lock */
    bool have;                       /* by lock: cur is valid */
    const char *source;              /* by lock: which source gave cur */
    int64_t quiet_until;             /* by lock: monotonic s; no new attempt before this */
    int last_err;                    /* by lock: result of the last failed attempt */
};

/* Walk the sources in order. @return 0 and *source, or -errno (logged). */
static int os3_creds_chain_resolve(struct os3_creds_chain *ch, struct objstore_credentials *out,
                                   const char **source)
{
    int rc;
    if (!ch->profile) {
        *source = "environment";
        rc = os3_creds_from_env(out);
        if (rc != -ENOENT)
            return rc;
    }
    bool found;
    *source = "profile";
    rc = os3_creds_profile_load(ch->profile, out, &found);
    if (rc != -ENOENT)
        return rc;
    const char *name = os3_creds_profile_name(ch->profile);
    char cred_path[OS3_CREDS_PATH_MAX], conf_path[OS3_CREDS_PATH_MAX];
    os3_creds_profile_paths(cred_path, conf_path, sizeof(cred_path));
    if (!found && (ch->profile || os3_creds_env("AWS_PROFILE"))) {
        TLOG_E("credentials: profile '%s' not found in %s or %s", name,
               cred_path[0] ? cred_path : "(no credentials file)",
               conf_path[0] ? conf_path : "(no config file)");
        return -EACCES;
    }
    *source = "container endpoint";
    rc = os3_creds_from_container(out);
    if (rc != -ENOENT)
        return rc;
    *source = "EC2 instance metadata";
    rc = os3_creds_from_imds(NULL, out);
    if (rc != -ENOENT)
        return rc;
    TLOG_E("credentials: none found; tried %sprofile '%s' (%s, %s), the container endpoint "
           "(AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI unset) and EC2 instance metadata "
           "(%s)",
           ch->profile ? "" : "the environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), ", name,
           cred_path[0] ? cred_path : "no credentials file",
           conf_path[0] ? conf_path : "no config file",
           os3_creds_env_true("AWS_EC2_METADATA_DISABLED") ? "disabled" : "unreachable or no role");
    return -EACCES;
}

static bool os3_creds_fresh(const struct objstore_credentials *cr, int64_t now)
{
    return cr->expiration == 0 || now < cr->expiration - OS3_CREDS_REFRESH_AHEAD_S;
}

static int os3_creds_chain_fetch(struct objstore_creds *c, struct objstore_credentials *out)
{
    struct os3_creds_chain *ch = (struct os3_creds_chain *)c;
    int rc = 0;
    pthread_mutex_lock(&ch->lock);
    int64_t now = os3_creds_wall_s();
    if (ch->have && os3_creds_fresh(&ch->cur, now))
        goto serve;
    if (os3_creds_mono_s() < ch->quiet_until) {
        /* a recent attempt failed: do not pay the timeouts again on every request */
        if (ch->have && now < ch->cur.expiration)
            goto serve;
        rc = ch->last_err;
        goto unlock;
    }
    struct objstore_credentials fresh;
    const char *source = NULL;
    rc = os3_creds_chain_resolve(ch, &fresh, &source);
    if (rc == 0) {
        if (!ch->have || ch->source != source)
            TLOG_I("credentials: using %s%s", source, fresh.expiration ? " (temporary)" : "");
        ch->cur = fresh;
        ch->have = true;
        ch->source = source;
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
    *out = &ch->base;
    return 0;
free_profile:
    free(ch->profile);
free_chain:
    free(ch);
    return -ENOMEM;
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
